/* quadrature.c: the Gauss-Hermite rule of quadrature.h by Golub-Welsch. One LAPACK call (dstev on
 * the n x n Jacobi matrix, O(n^2) with eigenvectors): the rules used here have 24 to 512 nodes,
 * where this costs microseconds to milliseconds once per run, so neither tabulated nodes nor the
 * O(n) asymptotic methods (Hale and Townsend) would pay for themselves.
 */
#include "cm/quadrature.h"

#include <lapacke.h>
#include <math.h>

size_t cm_quadrature_gauss_hermite_work(size_t n) { return n * n + 3 * n; }

cm_status cm_quadrature_gauss_hermite(double *nodes, double *weights, size_t n, double *work) {
    if (n < 1 || n > CM_QUADRATURE_MAX_NODES)
        return cm_error_set(CM_ERR_INVALID, "Gauss-Hermite: %zu nodes (1..%d)", n,
                            CM_QUADRATURE_MAX_NODES);
    double *off = work, *vectors = work + n, *lapack = vectors + n * n;
    for (size_t i = 0; i < n; i++) nodes[i] = 0.0;
    for (size_t i = 0; i + 1 < n; i++) off[i] = sqrt((double)(i + 1));
    lapack_int info = LAPACKE_dstev_work(LAPACK_COL_MAJOR, 'V', (lapack_int)n, nodes, off, vectors,
                                         (lapack_int)n, lapack);
    if (info != 0)
        return cm_error_set(CM_ERR_INVALID, "Gauss-Hermite: dstev failed (info %d)", (int)info);
    for (size_t i = 0; i < n; i++) weights[i] = vectors[i * n] * vectors[i * n]; /* column i, row 0 */
    return CM_OK;
}
