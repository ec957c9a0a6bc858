/* network.c: the registry of network types and what every network shares (network.h): the
 * tensor list, the type's state, workspaces of either precision, and the checked dispatch to the
 * type's functions. A new network type is one module and one line in `registry` below. */
#include "cm/network.h"

#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "nn/mlp.h"
#include "nn/unet.h"

/* Every network type, in the order --help lists them; the first is the default. */
static const cm_network_type *const registry[] = {
    &cm_network_mlp,
    &cm_network_unet,
};
#define REGISTRY_COUNT (sizeof registry / sizeof registry[0])

#define NETWORK_MAX_TENSORS 4096
#define NETWORK_MAX_PARAMS ((size_t)1 << 40)

struct cm_network {
    cm_network_config config;
    void *state; /* the type's, owned */
    cm_tensor_layout *tensors;
    size_t tensor_count, tensor_capacity, param_count;
};

struct cm_network_workspace {
    const cm_network_type *type;
    void *state; /* the type's workspace, owned */
    size_t rows;
    int f64;
};

size_t cm_network_type_count(void) { return REGISTRY_COUNT; }

const cm_network_type *cm_network_type_at(size_t index) {
    return index < REGISTRY_COUNT ? registry[index] : NULL;
}

const cm_network_type *cm_network_type_find(const char *name) {
    for (size_t i = 0; name && i < REGISTRY_COUNT; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

cm_status cm_network_type_parse(const cm_network_type **out, const char *name) {
    const char *names[REGISTRY_COUNT];
    for (size_t i = 0; i < REGISTRY_COUNT; i++) names[i] = registry[i]->name;
    int index;
    CM_TRY(cm_field_name_parse(&index, name, names, REGISTRY_COUNT, "network"));
    *out = registry[index];
    return CM_OK;
}

const cm_network_type *cm_network_type_default(void) { return registry[0]; }

void *cm_network_options(cm_network_config *config) { return config->options.bytes; }
const void *cm_network_options_const(const cm_network_config *config) {
    return config->options.bytes;
}

cm_status cm_network_config_set(cm_network_config *config, const char *key, double value) {
    const cm_network_type *type = config->type;
    for (size_t i = 0; i < type->option_count; i++)
        if (strcmp(type->options[i].key, key) == 0) {
            if (cm_field_set_number(&type->options[i], config->options.bytes, value, type->name) !=
                CM_OK)
                return cm_error_set(CM_ERR_INVALID, "%s", cm_error_detail());
            return CM_OK;
        }
    return cm_error_set(CM_ERR_INVALID, "the %s network has no setting \"%s\"", type->name, key);
}

cm_network_config cm_network_config_default(const cm_network_type *type, size_t dim,
                                            size_t noise_levels) {
    cm_network_config c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.dim = dim;
    c.noise_levels = noise_levels;
    type->defaults(&c);
    return c;
}

cm_status cm_network_create(cm_network **out, const cm_network_config *config) {
    *out = NULL;
    if (!config->type) return cm_error_set(CM_ERR_INVALID, "network: no type");
    if (config->noise_levels < 1 || config->noise_levels > CM_NETWORK_MAX_NOISE_LEVELS)
        return cm_error_set(CM_ERR_INVALID, "network: %zu noise levels per row (1 or 2)",
                            config->noise_levels);
    int image = config->image_channels || config->image_height || config->image_width;
    if (image && !(config->image_channels && config->image_height && config->image_width &&
                   config->image_channels * config->image_height * config->image_width == config->dim))
        return cm_error_set(CM_ERR_INVALID, "network: image %zu x %zu x %zu does not hold the "
                            "data dimension %zu", config->image_channels, config->image_height,
                            config->image_width, config->dim);
    for (size_t i = 0; i < config->type->option_count; i++)
        CM_TRY(cm_field_check(&config->type->options[i], cm_network_options_const(config)));
    cm_network *network = cm_calloc(1, sizeof *network);
    if (!network) return cm_error_set(CM_ERR_NOMEM, "network");
    network->config = *config;
    cm_status status = config->type->create(&network->state, network);
    if (status != CM_OK) {
        cm_network_free(network);
        return status;
    }
    *out = network;
    return CM_OK;
}

void cm_network_free(cm_network *network) {
    if (!network) return;
    if (network->state) network->config.type->destroy(network->state);
    cm_free(network->tensors);
    cm_free(network);
}

const cm_network_config *cm_network_config_of(const cm_network *n) { return &n->config; }
size_t cm_network_param_count(const cm_network *n) { return n->param_count; }
size_t cm_network_tensor_count(const cm_network *n) { return n->tensor_count; }
void *cm_network_state(const cm_network *n) { return n->state; }

const cm_tensor_layout *cm_network_tensor(const cm_network *n, size_t index) {
    return index < n->tensor_count ? &n->tensors[index] : NULL;
}

const cm_tensor_layout *cm_network_tensor_find(const cm_network *n, const char *name) {
    for (size_t i = 0; i < n->tensor_count; i++)
        if (strcmp(n->tensors[i].name, name) == 0) return &n->tensors[i];
    return NULL;
}

cm_status cm_network_add_tensor(cm_network *n, const char *name, size_t ndim,
                                const size_t *shape) {
    if (strlen(name) >= CM_TENSOR_NAME_MAX || ndim < 1 || ndim > CM_TENSOR_MAX_DIMS)
        return cm_error_set(CM_ERR_INVALID, "network: tensor '%.80s' (name length < %d, 1 to %d "
                            "dimensions)", name, CM_TENSOR_NAME_MAX, CM_TENSOR_MAX_DIMS);
    if (n->tensor_count == NETWORK_MAX_TENSORS)
        return cm_error_set(CM_ERR_INVALID, "network: more than %d tensors", NETWORK_MAX_TENSORS);
    cm_tensor_layout t = {0};
    snprintf(t.name, sizeof t.name, "%s", name);
    t.ndim = ndim;
    t.count = 1;
    for (size_t d = 0; d < ndim; d++) {
        if (shape[d] == 0 || t.count > NETWORK_MAX_PARAMS / shape[d])
            return cm_error_set(CM_ERR_INVALID, "network: tensor %s has an empty or huge shape",
                                name);
        t.shape[d] = shape[d];
        t.count *= shape[d];
    }
    if (n->param_count > NETWORK_MAX_PARAMS - t.count)
        return cm_error_set(CM_ERR_INVALID, "network: more than 2^40 parameters");
    if (n->tensor_count == n->tensor_capacity) {
        size_t capacity = n->tensor_capacity ? 2 * n->tensor_capacity : 16;
        cm_tensor_layout *grown = cm_malloc(capacity, sizeof *grown);
        if (!grown) return cm_error_set(CM_ERR_NOMEM, "network tensor list");
        if (n->tensor_count) memcpy(grown, n->tensors, n->tensor_count * sizeof *grown);
        cm_free(n->tensors);
        n->tensors = grown;
        n->tensor_capacity = capacity;
    }
    t.offset = n->param_count;
    n->param_count += t.count;
    n->tensors[n->tensor_count++] = t;
    return CM_OK;
}

void cm_network_init(const cm_network *n, float *params, cm_rng *rng) {
    n->config.type->init(n, params, rng);
}

double cm_network_forward_flops(const cm_network *n, size_t rows) {
    return n->config.type->forward_flops(n, rows);
}

static cm_status workspace_alloc(cm_network_workspace **out, const cm_network *n, size_t rows,
                                 int f64) {
    *out = NULL;
    if (rows == 0) return cm_error_set(CM_ERR_INVALID, "network workspace for 0 rows");
    cm_network_workspace *w = cm_calloc(1, sizeof *w);
    if (!w) return cm_error_set(CM_ERR_NOMEM, "network workspace");
    *w = (cm_network_workspace){.type = n->config.type, .rows = rows, .f64 = f64};
    cm_status status = n->config.type->workspace_alloc(&w->state, n, rows, f64);
    if (status != CM_OK) {
        cm_free(w);
        return status;
    }
    *out = w;
    return CM_OK;
}

cm_status cm_network_workspace_alloc(cm_network_workspace **out, const cm_network *n,
                                     size_t rows) {
    return workspace_alloc(out, n, rows, 0);
}

cm_status cm_network_workspace_alloc_f64(cm_network_workspace **out, const cm_network *n,
                                         size_t rows) {
    return workspace_alloc(out, n, rows, 1);
}

void cm_network_workspace_free(cm_network_workspace *w) {
    if (!w) return;
    w->type->workspace_free(w->state, w->f64);
    cm_free(w);
}

size_t cm_network_workspace_rows(const cm_network_workspace *w) { return w->rows; }

void cm_network_forward(const cm_network *n, float *out, const float *params,
                        cm_network_workspace *w, const float *x_in, const float *c_noise,
                        size_t rows) {
    n->config.type->forward(n, out, params, w->state, x_in, c_noise, rows);
}

void cm_network_backward(const cm_network *n, float *dparams, float *dx_in, const float *params,
                         cm_network_workspace *w, const float *dout, size_t rows) {
    n->config.type->backward(n, dparams, dx_in, params, w->state, dout, rows);
}

void cm_network_forward_f64(const cm_network *n, double *out, const double *params,
                            cm_network_workspace *w, const double *x_in, const double *c_noise,
                            size_t rows) {
    n->config.type->forward_f64(n, out, params, w->state, x_in, c_noise, rows);
}

void cm_network_backward_f64(const cm_network *n, double *dparams, double *dx_in,
                             const double *params, cm_network_workspace *w, const double *dout,
                             size_t rows) {
    n->config.type->backward_f64(n, dparams, dx_in, params, w->state, dout, rows);
}
