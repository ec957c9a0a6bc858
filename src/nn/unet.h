/* unet.h (private to src/nn): the U-Net of docs/unet.md for images, a network for consistency
 * models like the MLP of nn.h: out[rows, D] from x_in[rows, D] (D = C H W, each row an image in
 * NCHW order, already scaled by c_in) and c_noise[rows, L] (L = 1 noise level per row, or 2 for
 * a two-time network: level, target level). Rows are independent (GroupNorm per row).
 *
 * Parameters are one flat float vector described by named tensors (cm_unet_tensor: PyTorch's
 * names and shapes, conv weights [OC, C, K, K]) for model files and C export. Calls are per row
 * block and single-threaded (the caller runs blocks on its pool, one workspace per block):
 * forward keeps the activations in the workspace; backward OVERWRITES dparams (and dx_in) with
 * the gradient of this block, from the activations of the same workspace's last forward. Inside,
 * rows go through the network one at a time: each convolution is a oneDNN primitive made for
 * one row when the workspace is made (conv.h), so any rows <= capacity take the same path, and
 * a row's output does not depend on the other rows or on their number, bit for bit.
 *
 * A double twin (suffix _f64; the same wiring from unet_template.h, convolutions by the
 * reference loop) serves gradient checks. Internally activations are channels-last (conv.h).
 * Dimension letters: B / rows, C channels, H, W, HW = H W, E Fourier features, G groups.
 */
#ifndef CM_NN_UNET_H
#define CM_NN_UNET_H

#include <stddef.h>

#include "cm/network.h"
#include "cm/rng.h"
#include "cm/status.h"

#define CM_UNET_MAX_LEVELS 4
#define CM_UNET_MAX_BLOCKS_PER_LEVEL 4
#define CM_UNET_MAX_RESBLOCKS (2 * CM_UNET_MAX_LEVELS * CM_UNET_MAX_BLOCKS_PER_LEVEL + 1)
/* conv_in, 2 or 3 per residual block, one per level change, the output conv */
#define CM_UNET_MAX_CONVS (3 * CM_UNET_MAX_RESBLOCKS + 2 * CM_UNET_MAX_LEVELS + 2)
/* 10 or 12 per residual block, 2 per other conv, the embedding's 4, the output norm's 2 */
#define CM_UNET_MAX_TENSORS (12 * CM_UNET_MAX_RESBLOCKS + 2 * (2 * CM_UNET_MAX_LEVELS + 2) + 6)
#define CM_UNET_MAX_OPS (CM_UNET_MAX_RESBLOCKS + 2 * CM_UNET_MAX_LEVELS + 2)
#define CM_UNET_NAME_MAX 48

typedef struct {
    size_t channels, height, width; /* C, H, W of the images; H, W divisible by 2^(levels-1) */
    size_t base_channels;           /* ch: conv_in's output channels */
    size_t levels;                  /* resolutions: H x W, H/2 x W/2, ... */
    size_t channel_multipliers[CM_UNET_MAX_LEVELS]; /* level l has ch * mult[l] channels */
    size_t blocks_per_level;        /* residual blocks per level, encoder and decoder each */
    size_t groups;                  /* GroupNorm groups; every normalised width divisible */
    size_t embed;                   /* E Fourier features of each noise level (even) */
    double embed_max_frequency;     /* highest Fourier frequency (nn.h) */
    int two_time;                   /* 0: c_noise[rows, 1]; 1: c_noise[rows, 2] */
} cm_unet_config;

/* The network of docs/unet.md for C x H x W images: ch 32, multipliers 1, 2, 2 blocks per
 * level, 8 groups, 64 Fourier features up to frequency 1000 (the MLP's), one noise level. */
cm_unet_config cm_unet_config_default(size_t channels, size_t height, size_t width);

typedef enum {
    CM_UNET_INIT_UNIFORM, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's Conv2d and Linear */
    CM_UNET_INIT_ONES,    /* GroupNorm weights */
    CM_UNET_INIT_ZEROS    /* GroupNorm biases, the output conv */
} cm_unet_init;

/* A named parameter tensor: params[offset, offset + count) with the given shape. */
typedef struct {
    char name[CM_UNET_NAME_MAX]; /* "unet.down.0.res.1.conv1.weight", ... */
    size_t offset, count, rank, shape[4];
    cm_unet_init init;
    size_t fan_in; /* of CM_UNET_INIT_UNIFORM */
} cm_unet_tensor;

/* A convolution: its input shape (H, W, C), OC, kernel K, stride and parameter offsets. */
typedef struct {
    size_t height, width, in_channels, out_channels, kernel, stride;
    size_t weight, bias;
} cm_unet_conv;

/* A residual block (cin -> cout at H x W): h = conv1(SiLU(GN1(x))) + Linear(SiLU(emb)) per
 * channel; out = (conv2(SiLU(GN2(h))) + skip(x)) / sqrt(2), skip a 1x1 conv when cin != cout.
 * Parameter offsets, conv indices (skip -1: identity) and where the row keeps h and the two
 * GroupNorms' statistics (mean[G] then rstd[G]) in its activation frame. */
typedef struct {
    size_t in_channels, out_channels, height, width;
    size_t norm1_weight, norm1_bias, embed_weight, embed_bias, norm2_weight, norm2_bias;
    int conv1, conv2, skip;
    size_t h, stats1, stats2;
} cm_unet_block;

/* A tensor of a row's activation frame (channels-last) */
typedef struct {
    size_t height, width, channels, offset;
} cm_unet_activation;

typedef enum {
    CM_UNET_OP_CONV_IN,    /* output = conv(input) */
    CM_UNET_OP_RESBLOCK,   /* output = block(input), or block(concat(input, skip)) */
    CM_UNET_OP_DOWNSAMPLE, /* output = conv stride 2 (input) */
    CM_UNET_OP_UPSAMPLE,   /* output = conv(nearest x2 (input)) */
    CM_UNET_OP_OUTPUT      /* out = conv(SiLU(GN(input))) */
} cm_unet_op_kind;

typedef struct {
    cm_unet_op_kind kind;
    int input, skip, output; /* activation indices (skip, output: -1 when none) */
    int conv, block;         /* conv and residual-block indices (-1 when none) */
} cm_unet_op;

typedef struct {
    cm_unet_config config;
    size_t embed_width;  /* 4 ch: the embedding MLP's width */
    size_t param_count;
    size_t tensor_count;
    cm_unet_tensor tensors[CM_UNET_MAX_TENSORS];
    size_t conv_count, block_count, op_count, activation_count;
    cm_unet_conv convs[CM_UNET_MAX_CONVS];
    cm_unet_block blocks[CM_UNET_MAX_RESBLOCKS];
    cm_unet_op ops[CM_UNET_MAX_OPS];
    cm_unet_activation activations[CM_UNET_MAX_OPS + 1]; /* [0]: the input image */
    /* the embedding: Fourier(c_noise) [E L] -> Linear(E L, 4ch) -> SiLU -> Linear(4ch, 4ch) */
    size_t embed1_weight, embed1_bias, embed2_weight, embed2_bias; /* parameter offsets */
    size_t out_norm_weight, out_norm_bias;                         /* the output GroupNorm */
    /* frame offsets: Fourier features, the two Linear outputs and their SiLUs, output stats */
    size_t frame_fourier, frame_embed1, frame_embed1_act, frame_embed2, frame_embed_act;
    size_t frame_out_stats;
    size_t frame_size;   /* values a row keeps for the backward (each array 16-aligned) */
    size_t scratch_size; /* the largest H W C a row's layers read or write */
} cm_unet_layout;

/* The U-Net as a network type (network.h): its settings, and the image shape of the data. */
extern const cm_network_type cm_network_unet;
/* Its export_c (network.h; unet_export.c): the forward pass as C99 text. */
cm_status cm_unet_export(const cm_network *network, const float *params, cm_export_writer *writer);

/* Validate `config` and lay the network out (CM_ERR_INVALID with the reason). The layout is a
 * plain value (about 60 KB) that the workspaces and calls below borrow. */
cm_status cm_unet_layout_init(cm_unet_layout *out, const cm_unet_config *config);
/* PyTorch's defaults from `rng`, tensor by tensor in layout order (cm_unet_init), the output
 * conv zero: a fresh network outputs exactly 0. */
void cm_unet_init_params(float *params, const cm_unet_layout *layout, cm_rng *rng);
/* FLOPs of one forward of `rows` rows (2 per multiply-add of convolutions and Linears). */
double cm_unet_forward_flops(const cm_unet_layout *layout, size_t rows);

/* Activations of up to `capacity` rows, scratch, and (float) the oneDNN primitives; opaque. */
typedef struct cm_unet_workspace cm_unet_workspace;
typedef struct cm_unet_workspace_f64 cm_unet_workspace_f64;
cm_status cm_unet_workspace_alloc(cm_unet_workspace **out, const cm_unet_layout *layout,
                                  size_t capacity);
void cm_unet_workspace_free(cm_unet_workspace *workspace);
cm_status cm_unet_workspace_alloc_f64(cm_unet_workspace_f64 **out, const cm_unet_layout *layout,
                                      size_t capacity);
void cm_unet_workspace_free_f64(cm_unet_workspace_f64 *workspace);

/* out[rows, D] = F(x_in[rows, D], c_noise[rows, L]); 1 <= rows <= capacity (else
 * CM_ERR_INVALID). Keeps the activations for cm_unet_backward. Fails only if oneDNN does. */
cm_status cm_unet_forward(float *out, const float *params, const cm_unet_layout *layout,
                          cm_unet_workspace *workspace, const float *x_in, const float *c_noise,
                          size_t rows);
/* dparams[P] = d(sum out * dout)/dparams over the rows of the last forward (OVERWRITTEN), and
 * dx_in[rows, D] = d/dx_in (overwritten) when dx_in is not NULL. `params` and `rows` must be
 * those of that forward. */
cm_status cm_unet_backward(float *dparams, float *dx_in, const float *params,
                           const cm_unet_layout *layout, cm_unet_workspace *workspace,
                           const float *dout, size_t rows);
cm_status cm_unet_forward_f64(double *out, const double *params, const cm_unet_layout *layout,
                              cm_unet_workspace_f64 *workspace, const double *x_in,
                              const double *c_noise, size_t rows);
cm_status cm_unet_backward_f64(double *dparams, double *dx_in, const double *params,
                               const cm_unet_layout *layout, cm_unet_workspace_f64 *workspace,
                               const double *dout, size_t rows);

/* ---- parts of the double network, for gradient checks of each part (tests) */

/* Residual block `block` on one row: out[HW, cout] from x[HW, cin] and emb_act[4ch] (the
 * SiLU of the embedding), keeping h and the statistics in row `row` of the workspace. */
cm_status cm_unet_resblock_forward_f64(double *out, const double *x, const double *emb_act,
                                       const double *params, const cm_unet_layout *layout,
                                       cm_unet_workspace_f64 *workspace, size_t block, size_t row);
/* Its backward after that forward: dx += d/dx, d_emb_act += d/d emb_act, and the block's
 * parameter gradients added into dparams[P]. */
cm_status cm_unet_resblock_backward_f64(double *dx, double *d_emb_act, double *dparams,
                                        const double *dout, const double *x,
                                        const double *emb_act, const double *params,
                                        const cm_unet_layout *layout,
                                        cm_unet_workspace_f64 *workspace, size_t block,
                                        size_t row);
/* The noise embedding on one row: emb_act[4ch] = SiLU(Linear2(SiLU(Linear1(Fourier(c_noise)))))
 * (c_noise[L]), intermediate values kept in row `row`; its backward adds the embedding's
 * parameter gradients into dparams from d_emb_act[4ch]. */
void cm_unet_embedding_forward_f64(double *emb_act, const double *params,
                                   const cm_unet_layout *layout, cm_unet_workspace_f64 *workspace,
                                   const double *c_noise, size_t row);
void cm_unet_embedding_backward_f64(double *dparams, const double *d_emb_act,
                                    const double *params, const cm_unet_layout *layout,
                                    cm_unet_workspace_f64 *workspace, size_t row);

#endif
