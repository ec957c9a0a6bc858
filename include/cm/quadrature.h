/* quadrature.h: Gauss-Hermite quadrature for expectations over a standard normal,
 *     E g(U) ~ sum_i weights_i g(nodes_i),  U ~ N(0, 1),
 * exact for polynomials g of degree up to 2n - 1 (the probabilists' rule: weights sum to 1).
 * Used by ideal consistency training on a 1-D mixture (theory.h) and by learned consistency
 * training's 1-D targets (learned.h), both integrating f_{t-1} over a Gaussian posterior.
 */
#ifndef CM_QUADRATURE_H
#define CM_QUADRATURE_H

#include <stddef.h>

#include "cm/status.h"

#define CM_QUADRATURE_MAX_NODES 4096 /* the work below is n^2 doubles: 128 MiB at most */

/* Doubles of `work` the n-node rule needs: n^2 + 3 n. */
size_t cm_quadrature_gauss_hermite_work(size_t n);

/* The n-node rule (1 <= n <= CM_QUADRATURE_MAX_NODES) into nodes[n] (ascending) and weights[n], by Golub and Welsch (Math.
 * Comp. 23, 1969): the nodes are the eigenvalues of the symmetric tridiagonal Jacobi matrix of
 * the probabilists' Hermite polynomials (zero diagonal, off-diagonal sqrt(k)), the weights the
 * squared first components of its unit eigenvectors (LAPACK dstev). `work`: caller storage of
 * cm_quadrature_gauss_hermite_work(n) doubles; nothing is allocated. */
cm_status cm_quadrature_gauss_hermite(double *nodes, double *weights, size_t n, double *work);

#endif
