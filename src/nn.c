/* nn.c: MLP layout, initialisation, and the kernels of nn_template.h instantiated in float
 * (training) and double (gradient checks). See nn.h. */
#include "cm/nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cm/alloc.h"

#define REAL float
#define FN(name) name
#define CBLAS_GEMM cblas_sgemm
#define EXP expf
#define WORKSPACE cm_mlp_workspace
#include "nn_template.h"
#undef REAL
#undef FN
#undef CBLAS_GEMM
#undef EXP
#undef WORKSPACE

#define REAL double
#define FN(name) name##_f64
#define CBLAS_GEMM cblas_dgemm
#define EXP exp
#define WORKSPACE cm_mlp_workspace_f64
#include "nn_template.h"
#undef REAL
#undef FN
#undef CBLAS_GEMM
#undef EXP
#undef WORKSPACE

/* Limits that keep every size product far from overflow and every int argument of CBLAS valid. */
#define CM_MLP_MAX_WIDTH 65536
#define CM_MLP_MAX_DIM 1048576

cm_status cm_mlp_layout_init(cm_mlp_layout *out, const cm_mlp_config *config) {
    *out = (cm_mlp_layout){0};
    const cm_mlp_config *c = config;
    if (c->dim < 1 || c->dim > CM_MLP_MAX_DIM)
        return cm_error_set(CM_ERR_INVALID, "MLP: data dimension %zu out of [1, %d]", c->dim,
                            CM_MLP_MAX_DIM);
    if (c->width < 1 || c->width > CM_MLP_MAX_WIDTH)
        return cm_error_set(CM_ERR_INVALID, "MLP: width %zu out of [1, %d]", c->width,
                            CM_MLP_MAX_WIDTH);
    if (c->depth < 1 || c->depth > CM_MLP_MAX_DEPTH)
        return cm_error_set(CM_ERR_INVALID, "MLP: depth %zu out of [1, %d]", c->depth,
                            CM_MLP_MAX_DEPTH);
    if (c->embed < 2 || c->embed % 2 || c->embed > 4096)
        return cm_error_set(CM_ERR_INVALID, "MLP: embedding features %zu must be even, in [2, 4096]",
                            c->embed);
    if (!(c->embed_max_frequency >= 1.0) || !isfinite(c->embed_max_frequency))
        return cm_error_set(CM_ERR_INVALID, "MLP: embedding max frequency %g must be >= 1",
                            c->embed_max_frequency);
    out->config = *c;
    out->layer_count = c->depth + 1;
    size_t offset = 0;
    for (size_t l = 0; l < out->layer_count; l++) {
        out->in[l] = l == 0 ? c->dim + c->embed : c->width;
        out->out[l] = l == c->depth ? c->dim : c->width;
        out->weight_offset[l] = offset;
        offset += out->in[l] * out->out[l];
        out->bias_offset[l] = offset;
        offset += out->out[l];
    }
    out->param_count = offset;
    return CM_OK;
}

void cm_mlp_init_params(float *params, const cm_mlp_layout *layout, cm_rng *rng) {
    for (size_t l = 0; l < layout->layer_count; l++) {
        double bound = 1.0 / sqrt((double)layout->in[l]);
        size_t count = layout->in[l] * layout->out[l] + layout->out[l]; /* weight then bias */
        float *p = params + layout->weight_offset[l];
        for (size_t i = 0; i < count; i++) p[i] = (float)(bound * (2.0 * cm_rng_uniform(rng) - 1.0));
    }
}

double cm_mlp_forward_flops(const cm_mlp_layout *layout, size_t B) {
    double flops = 0.0;
    for (size_t l = 0; l < layout->layer_count; l++)
        flops += 2.0 * (double)B * (double)layout->in[l] * (double)layout->out[l];
    return flops;
}
