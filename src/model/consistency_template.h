/* consistency_template.h: the coefficient views, the consistency function of one row block and
 * the losses of consistency.h, compiled twice by consistency.c (REAL = float, FN(name) = name,
 * ROWS = cm_coefficient_rows; REAL = double, FN(name) = name##_f64, ROWS = ..._f64). */

ROWS FN(cm_coefficient_rows_view)(REAL *storage, size_t B, size_t levels) {
    ROWS rows = {.skip = storage, .out = storage + B, .in = storage + 2 * B,
                 .c_noise = storage + 3 * B, .levels = levels};
    return rows;
}

ROWS FN(cm_coefficient_rows_offset)(ROWS rows, size_t first) {
    rows.skip += first;
    rows.out += first;
    rows.in += first;
    rows.c_noise += first * rows.levels;
    return rows;
}

void FN(cm_coefficient_rows_store)(ROWS rows, size_t b, cm_coefficients c) {
    rows.skip[b] = (REAL)c.skip;
    rows.out[b] = (REAL)c.out;
    rows.in[b] = (REAL)c.in;
    rows.c_noise[b * rows.levels] = (REAL)c.c_noise;
    if (rows.levels == 2) rows.c_noise[b * 2 + 1] = (REAL)c.c_noise_target;
}

void FN(cm_consistency_forward)(REAL *out, REAL *x_in, REAL *F_out, const cm_network *network,
                                const REAL *params, cm_network_workspace *workspace, const REAL *x,
                                ROWS coef, size_t R) {
    size_t D = cm_network_config_of(network)->dim;
    for (size_t b = 0; b < R; b++)
        for (size_t i = 0; i < D; i++) x_in[b * D + i] = coef.in[b] * x[b * D + i];
    FN(cm_network_forward)(network, F_out, params, workspace, x_in, coef.c_noise, R);
    for (size_t b = 0; b < R; b++)
        for (size_t i = 0; i < D; i++) {
            size_t k = b * D + i;
            out[k] = coef.skip[b] * x[k] + coef.out[b] * F_out[k];
        }
}

void FN(cm_consistency_backward)(REAL *dparams, REAL *dF, const cm_network *network,
                                 const REAL *params, cm_network_workspace *workspace,
                                 const REAL *dout, ROWS coef, size_t R) {
    size_t D = cm_network_config_of(network)->dim;
    for (size_t b = 0; b < R; b++)
        for (size_t i = 0; i < D; i++) dF[b * D + i] = coef.out[b] * dout[b * D + i];
    FN(cm_network_backward)(network, dparams, NULL, params, workspace, dF, R);
}

/* Row b's loss term w (...) and, when dout_row is not NULL, its gradient of the batch loss
 * (1/batch included) into dout_row[D]. */
static double FN(loss_row)(REAL *dout_row, const REAL *out_row, const REAL *target_row, double w,
                           cm_loss loss, double c, size_t D, size_t batch) {
    double squared = 0.0;
    if (loss == CM_LOSS_L2) {
        for (size_t i = 0; i < D; i++) {
            double diff = (double)out_row[i] - (double)target_row[i];
            squared += diff * diff;
            if (dout_row) dout_row[i] = (REAL)(2.0 * w * diff / batch);
        }
        return w * squared;
    }
    for (size_t i = 0; i < D; i++) {
        double diff = (double)out_row[i] - (double)target_row[i];
        squared += diff * diff;
    }
    double root = sqrt(squared + c * c);
    if (dout_row)
        for (size_t i = 0; i < D; i++)
            dout_row[i] = (REAL)(w * ((double)out_row[i] - (double)target_row[i]) / (root * batch));
    return w * (root - c);
}

/* The batch loss of B rows, their terms added in row order. */
static double FN(loss_batch)(REAL *dout, const REAL *out, const REAL *target, const REAL *weight,
                             cm_loss loss, double c, int B, int D) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        size_t row = (size_t)b * D;
        total += FN(loss_row)(dout ? dout + row : NULL, out + row, target + row,
                              weight ? (double)weight[b] : 1.0, loss, c, (size_t)D, (size_t)B);
    }
    return total / B;
}

double FN(cm_loss_l2)(REAL *dout, const REAL *out, const REAL *target, const REAL *weight, int B,
                      int D) {
    return FN(loss_batch)(dout, out, target, weight, CM_LOSS_L2, 0.0, B, D);
}

double FN(cm_loss_pseudo_huber)(REAL *dout, const REAL *out, const REAL *target,
                                const REAL *weight, double c, int B, int D) {
    return FN(loss_batch)(dout, out, target, weight, CM_LOSS_PSEUDO_HUBER, c, B, D);
}
