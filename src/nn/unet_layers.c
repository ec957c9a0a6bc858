/* unet_layers.c: GroupNorm, GroupNorm + SiLU fused, nearest upsampling, channel concatenation
 * and the per-channel shift of unet_layers.h, instantiated in float (training) and double
 * (gradient checks) from unet_layers_template.h. Convolutions live in conv.c; SiLU, Linear and
 * the Fourier features are the MLP's (layers.h), reused; the fused kernels use SiLU's own exp
 * (silu.h), so they round as cm_silu_forward and cm_silu_backward do. */
#include "nn/unet_layers.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/vectorize.h"
#include "nn/silu.h"

#define REAL float
#define FN(name) name
#define EXP_NEG_ABS(x) cm_expf_neg_abs(x)
#define EXP_NEG_ABS_PARTS(x, scale) cm_expf_neg_abs_parts(x, scale)
#define IF_NEGATIVE(x, a, b) cm_if_negative(x, a, b)
#include "nn/unet_layers_template.h"
#undef REAL
#undef FN
#undef EXP_NEG_ABS
#undef EXP_NEG_ABS_PARTS
#undef IF_NEGATIVE

#define REAL double
#define FN(name) name##_f64
#define EXP_NEG_ABS(x) exp(-fabs(x))
#define EXP_NEG_ABS_PARTS(x, scale) (*(scale) = 1.0, exp(-fabs(x)))
#define IF_NEGATIVE(x, a, b) (signbit(x) ? (a) : (b))
#include "nn/unet_layers_template.h"
#undef REAL
#undef FN
#undef EXP_NEG_ABS
#undef EXP_NEG_ABS_PARTS
#undef IF_NEGATIVE
