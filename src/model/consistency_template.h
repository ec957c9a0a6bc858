/* consistency_template.h: consistency function and losses of consistency.h, compiled twice by
 * consistency.c (REAL = float, FN(name) = name; REAL = double, FN(name) = name##_f64). */

void FN(cm_coefficients_store)(REAL *coef, int B, int b, cm_coefficients c) {
    coef[b] = (REAL)c.skip;
    coef[B + b] = (REAL)c.out;
    coef[2 * B + b] = (REAL)c.in;
    if (!c.two_time) {
        coef[3 * B + b] = (REAL)c.c_noise;
        return;
    }
    coef[3 * B + 2 * b] = (REAL)c.c_noise;
    coef[3 * B + 2 * b + 1] = (REAL)c.c_noise_target;
}

void FN(cm_consistency_forward)(REAL *out, REAL *x_in, REAL *F_out, const REAL *params,
                                const cm_mlp_layout *layout, WORKSPACE *workspace, const REAL *x,
                                const REAL *coef, int B) {
    int D = (int)layout->config.dim;
    const REAL *skip = coef, *scale_out = coef + B, *scale_in = coef + 2 * B, *c_noise = coef + 3 * B;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < D; i++) x_in[(size_t)b * D + i] = scale_in[b] * x[(size_t)b * D + i];
    FN(cm_mlp_forward)(F_out, params, layout, workspace, x_in, c_noise, B);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < D; i++) {
            size_t k = (size_t)b * D + i;
            out[k] = skip[b] * x[k] + scale_out[b] * F_out[k];
        }
}

void FN(cm_consistency_backward)(REAL *dparams, REAL *dF, const REAL *params,
                                 const cm_mlp_layout *layout, WORKSPACE *workspace,
                                 const REAL *dout, const REAL *coef, int B) {
    int D = (int)layout->config.dim;
    const REAL *scale_out = coef + B;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < D; i++) dF[(size_t)b * D + i] = scale_out[b] * dout[(size_t)b * D + i];
    FN(cm_mlp_backward)(dparams, NULL, params, layout, workspace, dF, B);
}

double FN(cm_loss_l2)(REAL *dout, const REAL *out, const REAL *target, const REAL *weight, int B,
                      int D) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        double w = weight ? (double)weight[b] : 1.0, row = 0.0;
        for (int i = 0; i < D; i++) {
            size_t k = (size_t)b * D + i;
            double diff = (double)out[k] - (double)target[k];
            row += diff * diff;
            if (dout) dout[k] = (REAL)(2.0 * w * diff / B);
        }
        total += w * row;
    }
    return total / B;
}

double FN(cm_loss_pseudo_huber)(REAL *dout, const REAL *out, const REAL *target,
                                const REAL *weight, double c, int B, int D) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        double w = weight ? (double)weight[b] : 1.0, squared = 0.0;
        for (int i = 0; i < D; i++) {
            size_t k = (size_t)b * D + i;
            double diff = (double)out[k] - (double)target[k];
            squared += diff * diff;
        }
        double root = sqrt(squared + c * c);
        total += w * (root - c);
        if (dout)
            for (int i = 0; i < D; i++) {
                size_t k = (size_t)b * D + i;
                dout[k] = (REAL)(w * ((double)out[k] - (double)target[k]) / (root * B));
            }
    }
    return total / B;
}
