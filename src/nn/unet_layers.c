/* unet_layers.c: GroupNorm, nearest upsampling, channel concatenation and the per-channel shift
 * of unet_layers.h, instantiated in float (training) and double (gradient checks) from
 * unet_layers_template.h. Convolutions live in conv.c; SiLU, Linear and the Fourier features
 * are the MLP's (nn.h), reused. */
#include "nn/unet_layers.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/vectorize.h"

#define REAL float
#define FN(name) name
#include "nn/unet_layers_template.h"
#undef REAL
#undef FN

#define REAL double
#define FN(name) name##_f64
#include "nn/unet_layers_template.h"
#undef REAL
#undef FN
