/* config.c: the training configuration (config.h): defaults with their sources, the field tables
 * of its parts, range checks, and its JSON form (format 2, nested; format 1, flat, is still read
 * through the legacy key table below). */
#include "cm/config.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"

/* Names of every enum of the config: they drive the parsers, the JSON form and --help. */
static const char *const method_names[] = {"lhw", "ct", "ict", "dsm", "cd", "cd2"};
static const char *const solver_names[] = {"euler", "heun"};
static const char *const teacher_names[] = {"online", "sequential"};
static const char *const loss_names[] = {"l2", "pseudo-huber"};
static const char *const weighting_names[] = {"none", "inverse-gap", "edm"};
static const char *const lr_schedule_names[] = {"constant", "cosine"};
#define COUNT(array) (sizeof array / sizeof array[0])

/* name and parse functions of one enum */
#define ENUM_FUNCTIONS(type, prefix, names, what)                                   \
    const char *prefix##_name(type value) {                                         \
        return (int)value >= 0 && (size_t)value < COUNT(names) ? names[value] : "?"; \
    }                                                                               \
    cm_status prefix##_parse(type *out, const char *text) {                         \
        int value;                                                                  \
        CM_TRY(cm_field_name_parse(&value, text, names, COUNT(names), what));       \
        *out = (type)value;                                                         \
        return CM_OK;                                                               \
    }
ENUM_FUNCTIONS(cm_method, cm_method, method_names, "method")
ENUM_FUNCTIONS(cm_teacher, cm_teacher, teacher_names, "teacher")
ENUM_FUNCTIONS(cm_loss, cm_loss, loss_names, "loss")
ENUM_FUNCTIONS(cm_solver, cm_solver, solver_names, "solver")
ENUM_FUNCTIONS(cm_weighting, cm_weighting, weighting_names, "weighting")
ENUM_FUNCTIONS(cm_lr_schedule, cm_lr_schedule, lr_schedule_names, "learning-rate schedule")
#undef ENUM_FUNCTIONS

int cm_method_is_distillation(cm_method method) {
    return method == CM_METHOD_CD || method == CM_METHOD_CD2;
}

int cm_method_is_ve_consistency(cm_method method) {
    return method == CM_METHOD_CT || method == CM_METHOD_ICT || cm_method_is_distillation(method);
}

size_t cm_method_noise_levels(cm_method method) { return method == CM_METHOD_CD2 ? 2 : 1; }

/* ---------------------------------------------------------------- field tables */

#define FIELD(type, key, kind, member, lo, hi, help) \
    {key, kind, offsetof(type, member), lo, hi, NULL, 0, help, NULL, 0}
#define FIELD_FLAG(type, key, kind, member, lo, hi, help, flag) \
    {key, kind, offsetof(type, member), lo, hi, NULL, 0, help, flag, 0}
/* a double that must be > lo */
#define POSITIVE(type, key, member, lo, hi, help, flag) \
    {key, CM_FIELD_DOUBLE, offsetof(type, member), lo, hi, NULL, 0, help, flag, 1}
#define ENUM_FIELD(type, key, member, names, help) \
    {key, CM_FIELD_ENUM, offsetof(type, member), 0, 0, names, COUNT(names), help, NULL, 0}

static const cm_field run_fields[] = {
    FIELD(cm_train_config, "steps", CM_FIELD_SIZE, steps, 1, 1e9, "optimiser steps K"),
    FIELD(cm_train_config, "batch", CM_FIELD_SIZE, batch, 1, 1048576, "batch size B"),
    FIELD(cm_train_config, "blocks", CM_FIELD_SIZE, blocks, 1, 4096,
          "fixed row blocks of a batch, the unit of work of threads and processes (results "
          "depend on it, not on the thread or process count)"),
    FIELD(cm_train_config, "seed", CM_FIELD_U64, seed, 0, 0, "seed of every random draw"),
};

#define OPT(key, kind, member, lo, hi, help) FIELD(cm_optimizer_config, key, kind, member, lo, hi, help)
static const cm_field optimizer_fields[] = {
    POSITIVE(cm_optimizer_config, "lr", learning_rate, 0, 1e300, "Adam learning rate", NULL),
    OPT("beta1", CM_FIELD_DOUBLE, beta1, 0, 0.9999999999, "Adam first-moment decay"),
    OPT("beta2", CM_FIELD_DOUBLE, beta2, 0, 0.9999999999, "Adam second-moment decay"),
    POSITIVE(cm_optimizer_config, "adam_eps", epsilon, 0, 1e300, "Adam epsilon", NULL),
    OPT("weight_decay", CM_FIELD_DOUBLE, weight_decay, 0, 1e300, "decoupled weight decay"),
    OPT("warmup", CM_FIELD_SIZE, warmup_steps, 0, 1e9, "linear warm-up steps"),
    OPT("clip", CM_FIELD_DOUBLE, clip_norm, 0, 1e300, "gradient-norm clip (0: off)"),
    ENUM_FIELD(cm_optimizer_config, "lr_schedule", lr_schedule, lr_schedule_names,
               "learning-rate schedule: constant | cosine (decay to final-lr x lr at the last step)"),
    FIELD_FLAG(cm_optimizer_config, "final_lr_fraction", CM_FIELD_DOUBLE, final_fraction, 0, 1,
               "cosine: final rate as a fraction of --lr", "final-lr"),
    OPT("ema", CM_FIELD_DOUBLE, ema_decay, 0, 0.9999999999, "evaluation EMA decay (0: off)"),
};
#undef OPT

#define MET(key, kind, member, lo, hi, help) FIELD(cm_method_config, key, kind, member, lo, hi, help)
static const cm_field method_fields[] = {
    ENUM_FIELD(cm_method_config, "method", kind, method_names,
               "lhw | ct | ict | dsm (a denoiser) | cd (distillation) | cd2 (two-time distillation)"),
    POSITIVE(cm_method_config, "sigma_data", sigma_data, 0, 1e300,
             "standard deviation the data are standardised to [CM]", NULL),
    ENUM_FIELD(cm_method_config, "loss", loss, loss_names, "l2 | pseudo-huber"),
    ENUM_FIELD(cm_method_config, "weighting", weighting, weighting_names,
               "none | inverse-gap: 1/(sigma_{i+1} - sigma_i) | edm (dsm only)"),
    MET("huber_c", CM_FIELD_DOUBLE, huber_c, 0, 1e300,
        "pseudo-Huber constant c (0: [iCT]'s 0.00054 sqrt(D))"),
    POSITIVE(cm_method_config, "sigma_min", sigma_min, 0, 1e300,
             "ct, ict, cd, cd2: smallest noise level (f is the identity there)", NULL),
    POSITIVE(cm_method_config, "sigma_max", sigma_max, 0, 1e300,
             "ct, ict, cd, cd2: largest noise level (the model's range)", NULL),
    POSITIVE(cm_method_config, "rho", rho, 0, 1e300, "Karras grid exponent rho [CM]", NULL),
    FIELD_FLAG(cm_method_config, "T", CM_FIELD_SIZE, chain_T, 2, 1e7, "lhw: chain length T", "T"),
    POSITIVE(cm_method_config, "c0", c0, 0, 1e300, "lhw: schedule constant c0", NULL),
    POSITIVE(cm_method_config, "c1", c1, 0, 1e300, "lhw: schedule constant c1", NULL),
    ENUM_FIELD(cm_method_config, "teacher", teacher, teacher_names, "lhw: online | sequential"),
    MET("ct_s0", CM_FIELD_SIZE, ct_s0, 2, 1e5, "ct: curriculum s0 [CM]"),
    MET("ct_s1", CM_FIELD_SIZE, ct_s1, 2, 1e5, "ct: curriculum s1 [CM]"),
    POSITIVE(cm_method_config, "ct_mu0", ct_mu0, 0, 0.999999999999,
             "ct: adaptive target EMA mu0 [CM]", NULL),
    MET("target_ema", CM_FIELD_DOUBLE, ct_target_ema, -1, 0.9999999999,
        "ct, cd, cd2: target EMA decay in [0, 1) (0: no EMA target); ct negative: [CM]'s "
        "adaptive mu(k)"),
    MET("ict_s0", CM_FIELD_SIZE, ict_s0, 1, 1e5, "ict: curriculum s0 [iCT]"),
    MET("ict_s1", CM_FIELD_SIZE, ict_s1, 1, 1e5, "ict: curriculum s1 [iCT]"),
    FIELD_FLAG(cm_method_config, "ict_p_mean", CM_FIELD_DOUBLE, ict_p_mean, -1e3, 1e3,
               "ict: mean of log sigma of the level distribution", "p-mean"),
    POSITIVE(cm_method_config, "ict_p_std", ict_p_std, 0, 1e3,
             "ict: std of log sigma of the level distribution", "p-std"),
    MET("dsm_p_mean", CM_FIELD_DOUBLE, dsm_p_mean, -1e3, 1e3, "dsm: mean of log sigma (EDM)"),
    POSITIVE(cm_method_config, "dsm_p_std", dsm_p_std, 0, 1e3, "dsm: std of log sigma (EDM)", NULL),
    MET("cd_levels", CM_FIELD_SIZE, cd_levels, 2, 1e5, "cd, cd2: levels N of the fixed Karras grid"),
    ENUM_FIELD(cm_method_config, "cd_solver", cd_solver, solver_names,
               "cd, cd2: teacher ODE step, euler | heun"),
};
#undef MET

const cm_field *cm_train_config_fields(size_t *count) {
    *count = COUNT(run_fields);
    return run_fields;
}
const cm_field *cm_optimizer_config_fields(size_t *count) {
    *count = COUNT(optimizer_fields);
    return optimizer_fields;
}
const cm_field *cm_method_config_fields(size_t *count) {
    *count = COUNT(method_fields);
    return method_fields;
}

/* ---------------------------------------------------------------- defaults and checks */

cm_train_config cm_train_config_default(cm_method method, size_t dim) {
    return cm_train_config_default_network(method, cm_network_type_default(), dim);
}

cm_train_config cm_train_config_default_network(cm_method method, const cm_network_type *type,
                                                size_t dim) {
    cm_train_config c;
    memset(&c, 0, sizeof c);
    /* Values marked "measured" are ours: chosen by the runs in docs/training.md on the 2-D
     * sets, where the paper's value (given beside it) trained worse. Each is a flag. */
    c.network = cm_network_config_default(type, dim, cm_method_noise_levels(method));
    c.steps = 16000;                   /* measured: about 2 minutes on 2 cores at width 256 */
    c.batch = 512;
    c.blocks = 2;                      /* two row blocks: one per core of the machines we measure */
    c.seed = 0;
    cm_optimizer_config *o = &c.optimizer; /* betas (0.9, 0.999), eps 1e-8 [CM], [iCT] */
    *o = (cm_optimizer_config){.learning_rate = 1e-3, /* measured; [CM], [iCT]: 1e-4 to 2e-4 */
                               .beta1 = 0.9, .beta2 = 0.999, .epsilon = 1e-8,
                               .lr_schedule = CM_LR_COSINE, /* measured ([iCT]: constant) */
                               .final_fraction = 0.0,
                               .ema_decay = 0.999}; /* ours; [iCT]: 0.99993 for 400k steps */
    cm_method_config *m = &c.method;
    m->kind = method;
    m->sigma_data = 0.5;               /* [CM] */
    m->sigma_min = 0.002;              /* [CM] */
    m->sigma_max = 10.0;               /* measured; [CM], [iCT]: 80 (images of std 0.5 in 3072 dims) */
    m->rho = 7.0;                      /* [CM] */
    m->chain_T = 100;                  /* [LHW] chain length: measured (T = 1000 did worse) */
    m->c0 = 2.0;                       /* [LHW]'s "large" constants (docs/math.md) */
    m->c1 = 4.0;
    m->teacher = CM_TEACHER_ONLINE;
    m->ct_s0 = 2;                      /* [CM] appendix: s0 = 2, s1 = 150, mu0 = 0.9 */
    m->ct_s1 = 150;
    m->ct_mu0 = 0.9;
    m->ct_target_ema = 0.0;            /* measured: no EMA target; [CM]'s adaptive mu(k) (-1)
                                          collapses here, as a PyTorch reference run did */
    m->ict_s0 = 10;                    /* [iCT]: s0 = 10, s1 = 1280 */
    m->ict_s1 = 1280;
    m->ict_p_mean = 0.0;               /* measured; [iCT]: -1.1 */
    m->ict_p_std = 2.0;                /* [iCT] */
    m->huber_c = 0.0;                  /* 0.00054 sqrt(D) [iCT] */
    /* [iCT]: pseudo-Huber with weights 1 / (sigma_{i+1} - sigma_i); [CM]: l2, unweighted;
     * [LHW]: l2 in the paper; we measured pseudo-Huber with the same weights to train better. */
    m->loss = method == CM_METHOD_CT ? CM_LOSS_L2 : CM_LOSS_PSEUDO_HUBER;
    m->weighting = method == CM_METHOD_CT ? CM_WEIGHTING_NONE : CM_WEIGHTING_INVERSE_GAP;
    m->dsm_p_mean = -1.2;              /* EDM (Karras et al. 2022), table 1 */
    m->dsm_p_std = 1.2;
    m->cd_levels = 18;                 /* [CM] CD on CIFAR-10: N = 18 with Heun */
    m->cd_solver = CM_SOLVER_HEUN;
    if (method == CM_METHOD_DSM) {     /* EDM: l2 on D with weight (sigma^2 + sd^2) / (sigma sd)^2 */
        m->loss = CM_LOSS_L2;
        m->weighting = CM_WEIGHTING_EDM;
        o->learning_rate = 1e-2;       /* measured on 8gaussians (docs/sampling.md): at 1e-3 and
                                          3e-3 the loss stays on the plateau of the Gaussian
                                          denoiser (D = c_skip x) for thousands of steps */
        /* measured: an MLP of depth 3 stays on that plateau at 1e-3 and diverges at 1e-2 */
        if (strcmp(type->name, "mlp") == 0) cm_network_config_set(&c.network, "depth", 2);
    } else if (cm_method_is_distillation(method)) {
        /* [CM] CD: l2 (or LPIPS on images), lambda = 1, mu = 0.95; cd2 keeps all of it */
        m->loss = CM_LOSS_L2;
        m->weighting = CM_WEIGHTING_NONE;
        m->ct_target_ema = 0.95;
    }
    return c;
}

double cm_train_config_huber_c(const cm_train_config *c) {
    return c->method.huber_c > 0 ? c->method.huber_c : 0.00054 * sqrt((double)c->network.dim);
}

#define CHECK(condition, ...) \
    if (!(condition)) return cm_error_set(CM_ERR_INVALID, __VA_ARGS__)

/* Size limits, checked before anything is allocated from a config (which may come from a file):
 * 2^28 parameters (1 GiB of float32 per copy; the trainer keeps about seven copies), 2^28 values
 * in a batch of data, and 2^40 FLOPs in one forward pass of a batch. Far beyond a CPU run. */
#define CONFIG_MAX_PARAMS ((size_t)1 << 28)
#define CONFIG_MAX_BATCH_VALUES ((size_t)1 << 28)
#define CONFIG_MAX_BATCH_FLOPS 1099511627776.0

static cm_status check_table(const cm_field *fields, size_t count, const void *base) {
    for (size_t i = 0; i < count; i++) CM_TRY(cm_field_check(&fields[i], base));
    return CM_OK;
}

/* The network the config asks for: valid, of the method's noise levels, not too large. */
static cm_status check_network(const cm_train_config *c) {
    CHECK(c->network.noise_levels == cm_method_noise_levels(c->method.kind),
          "config: a %s model's network takes %zu noise level(s) per row, not %zu",
          cm_method_name(c->method.kind), cm_method_noise_levels(c->method.kind),
          c->network.noise_levels);
    CHECK(c->network.dim >= 1 && c->batch <= CONFIG_MAX_BATCH_VALUES / c->network.dim,
          "config: batch %zu times dimension %zu exceeds %zu values", c->batch, c->network.dim,
          CONFIG_MAX_BATCH_VALUES);
    cm_network *network;
    CM_TRY(cm_network_create(&network, &c->network));
    size_t params = cm_network_param_count(network);
    double flops = cm_network_forward_flops(network, c->batch);
    cm_network_free(network);
    CHECK(params <= CONFIG_MAX_PARAMS, "config: the network has %zu parameters, more than %zu",
          params, CONFIG_MAX_PARAMS);
    CHECK(flops <= CONFIG_MAX_BATCH_FLOPS, "config: one forward pass of the batch takes %.3g "
          "FLOPs, more than %.3g", flops, CONFIG_MAX_BATCH_FLOPS);
    return CM_OK;
}

cm_status cm_train_config_check(const cm_train_config *c) {
    const cm_method_config *m = &c->method;
    CM_TRY(check_table(run_fields, COUNT(run_fields), c));
    CM_TRY(check_table(optimizer_fields, COUNT(optimizer_fields), &c->optimizer));
    CM_TRY(check_table(method_fields, COUNT(method_fields), m));
    CHECK(m->sigma_max > m->sigma_min, "config: need 0 < sigma_min (%g) < sigma_max (%g)",
          m->sigma_min, m->sigma_max);
    CHECK(m->ct_s1 >= m->ct_s0, "config: CT curriculum needs 2 <= s0 (%zu) <= s1 (%zu) <= 1e5",
          m->ct_s0, m->ct_s1);
    CHECK(m->ict_s1 >= m->ict_s0, "config: iCT curriculum needs 1 <= s0 (%zu) <= s1 (%zu) <= 1e5",
          m->ict_s0, m->ict_s1);
    CHECK(m->weighting != CM_WEIGHTING_EDM || m->kind == CM_METHOD_DSM,
          "config: the edm weighting applies to dsm only (method %s)", cm_method_name(m->kind));
    CHECK(!cm_method_is_distillation(m->kind) || m->ct_target_ema >= 0,
          "config: %s needs a fixed target EMA in [0, 1) (given %g)", cm_method_name(m->kind),
          m->ct_target_ema);
    CHECK(c->blocks <= c->batch, "config: %zu row blocks for a batch of %zu rows (at most one "
          "block per row)", c->blocks, c->batch);
    return check_network(c);
}

/* ---------------------------------------------------------------- JSON */

/* Growing text for the JSON form; `failed` records a lost append. */
typedef struct {
    char *text;
    size_t used, capacity;
    int failed;
} json_text;

static void append(json_text *t, const char *piece) {
    size_t length = strlen(piece);
    if (t->failed) return;
    if (t->used + length + 1 > t->capacity) {
        size_t capacity = 2 * (t->used + length + 1);
        char *bigger = cm_malloc(capacity, 1);
        if (!bigger) {
            t->failed = 1;
            return;
        }
        if (t->text) memcpy(bigger, t->text, t->used + 1);
        cm_free(t->text);
        t->text = bigger;
        t->capacity = capacity;
    }
    memcpy(t->text + t->used, piece, length + 1);
    t->used += length;
}

/* "key": value pairs of a table, each preceded by ", " unless it is the object's first. */
static void append_fields(json_text *t, const cm_field *fields, size_t count, const void *base,
                          int *first) {
    for (size_t i = 0; i < count; i++) {
        char value[64];
        cm_field_format(value, sizeof value, &fields[i], base);
        append(t, *first ? "\"" : ", \"");
        append(t, fields[i].key);
        append(t, "\": ");
        append(t, value);
        *first = 0;
    }
}

static void append_size(json_text *t, const char *key, size_t value) {
    char piece[96];
    snprintf(piece, sizeof piece, ", \"%s\": %zu", key, value);
    append(t, piece);
}

cm_status cm_train_config_to_json(char **out, const cm_train_config *c) {
    *out = NULL;
    json_text t = {0};
    int first = 1;
    append(&t, "{\"method\": {");
    append_fields(&t, method_fields, COUNT(method_fields), &c->method, &first);
    append(&t, "}, \"network\": {\"type\": \"");
    append(&t, c->network.type->name);
    append(&t, "\"");
    append_size(&t, "dim", c->network.dim);
    if (c->network.image_channels) {
        append_size(&t, "image_channels", c->network.image_channels);
        append_size(&t, "image_height", c->network.image_height);
        append_size(&t, "image_width", c->network.image_width);
    }
    first = 0;
    append_fields(&t, c->network.type->options, c->network.type->option_count,
                  cm_network_options_const(&c->network), &first);
    append(&t, "}, \"optimizer\": {");
    first = 1;
    append_fields(&t, optimizer_fields, COUNT(optimizer_fields), &c->optimizer, &first);
    append(&t, "}, ");
    first = 1;
    append_fields(&t, run_fields, COUNT(run_fields), c, &first);
    append(&t, "}");
    if (t.failed) {
        cm_free(t.text);
        return cm_error_set(CM_ERR_NOMEM, "config JSON");
    }
    *out = t.text;
    return CM_OK;
}

/* Every field of the JSON form in one list, for cm_train_config_diff: a table and the base its
 * offsets refer to. */
typedef struct {
    const cm_field *fields;
    size_t count;
    const void *given, *stored;
} table_pair;

cm_status cm_train_config_diff(const cm_train_config *given, const cm_train_config *stored) {
    if (given->network.type != stored->network.type)
        return cm_error_set(CM_ERR_INVALID, "\"network\" is %s, the stored run has %s",
                            given->network.type->name, stored->network.type->name);
    const size_t given_shape[] = {given->network.dim, given->network.image_channels,
                                  given->network.image_height, given->network.image_width};
    const size_t stored_shape[] = {stored->network.dim, stored->network.image_channels,
                                   stored->network.image_height, stored->network.image_width};
    static const char *const shape_keys[] = {"dim", "image_channels", "image_height",
                                             "image_width"};
    for (size_t i = 0; i < 4; i++)
        if (given_shape[i] != stored_shape[i])
            return cm_error_set(CM_ERR_INVALID, "\"%s\" is %zu, the stored run has %zu",
                                shape_keys[i], given_shape[i], stored_shape[i]);
    table_pair tables[] = {
        {method_fields, COUNT(method_fields), &given->method, &stored->method},
        {given->network.type->options, given->network.type->option_count,
         cm_network_options_const(&given->network), cm_network_options_const(&stored->network)},
        {optimizer_fields, COUNT(optimizer_fields), &given->optimizer, &stored->optimizer},
        {run_fields, COUNT(run_fields), given, stored},
    };
    for (size_t t = 0; t < COUNT(tables); t++)
        for (size_t i = 0; i < tables[t].count; i++) {
            char a[64], b[64];
            cm_field_format(a, sizeof a, &tables[t].fields[i], tables[t].given);
            cm_field_format(b, sizeof b, &tables[t].fields[i], tables[t].stored);
            if (strcmp(a, b) != 0)
                return cm_error_set(CM_ERR_INVALID, "\"%s\" is %s, the stored run has %s",
                                    tables[t].fields[i].key, a, b);
        }
    return CM_OK;
}

/* One table of a JSON object being read, with the keys already seen (so that a repeated key is
 * an error). */
#define TABLE_MAX_FIELDS 64
typedef struct {
    const cm_field *fields;
    size_t count;
    void *base;
    int seen[TABLE_MAX_FIELDS];
} reading_table;

/* If `item` is a key of one of tables[count], set it (1); 0 when no table has the key. */
static int read_member(cm_status *status, const cJSON *item, reading_table *tables, size_t count,
                       const char *name) {
    for (size_t t = 0; t < count; t++)
        for (size_t i = 0; i < tables[t].count; i++) {
            const cm_field *f = &tables[t].fields[i];
            if (strcmp(item->string, f->key) != 0) continue;
            if (tables[t].seen[i]++)
                *status = cm_error_set(CM_ERR_FORMAT, "%s: configuration key \"%s\" given twice",
                                       name, f->key);
            else if (cJSON_IsNumber(item))
                *status = cm_field_set_number(f, tables[t].base, item->valuedouble, name);
            else if (cJSON_IsString(item))
                *status = cm_field_set_name(f, tables[t].base, item->valuestring, name);
            else
                *status = cm_error_set(CM_ERR_FORMAT, "%s: \"%s\" must be a %s", name, f->key,
                                       f->kind == CM_FIELD_ENUM ? "string" : "number");
            return 1;
        }
    return 0;
}

/* The members of `object` into tables[count]; `skip` names keys handled by the caller. */
static cm_status read_object(const cJSON *object, reading_table *tables, size_t count,
                             const char *const *skip, size_t skip_count, const char *name) {
    cm_status status = CM_OK;
    for (const cJSON *item = object->child; item && status == CM_OK; item = item->next) {
        int skipped = 0;
        for (size_t k = 0; k < skip_count; k++) skipped |= strcmp(item->string, skip[k]) == 0;
        if (skipped) continue;
        if (!read_member(&status, item, tables, count, name))
            status = cm_error_set(CM_ERR_FORMAT, "%s: unknown configuration key \"%.64s\"", name,
                                  item->string);
    }
    return status;
}

/* A JSON number that is an integer in [0, max]. */
static int integer_value(const cJSON *item, double max, size_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= 0 && v <= max) || floor(v) != v) return 0;
    *out = (size_t)v;
    return 1;
}

static reading_table table(const cm_field *fields, size_t count, void *base) {
    reading_table t;
    memset(&t, 0, sizeof t);
    t.fields = fields;
    t.count = count;
    t.base = base;
    return t;
}

/* Format 1: every key at the top level, the network an MLP. */
static cm_status read_flat(cm_train_config *c, const cJSON *root, const char *name) {
    const cJSON *dim = cJSON_GetObjectItemCaseSensitive(root, "dim");
    size_t dim_value;
    cm_method method;
    if (!integer_value(dim, 1e9, &dim_value))
        return cm_error_set(CM_ERR_FORMAT, "%s: configuration needs \"method\" and \"dim\"", name);
    if (cm_method_parse(&method, cJSON_GetObjectItemCaseSensitive(root, "method")->valuestring) !=
        CM_OK)
        return cm_error_set(CM_ERR_FORMAT, "%s: %s", name, cm_error_detail());
    const cm_network_type *mlp = cm_network_type_find("mlp");
    *c = cm_train_config_default_network(method, mlp, dim_value);
    reading_table tables[] = {
        table(run_fields, COUNT(run_fields), c),
        table(optimizer_fields, COUNT(optimizer_fields), &c->optimizer),
        table(method_fields, COUNT(method_fields), &c->method),
        table(mlp->options, mlp->option_count, cm_network_options(&c->network)),
    };
    static const char *const skip[] = {"dim"};
    return read_object(root, tables, COUNT(tables), skip, 1, name);
}

/* The "network" object of format 2: type and shape, then the type's settings. */
static cm_status read_network(cm_train_config *c, const cJSON *network, const char *name) {
    reading_table options = table(c->network.type->options, c->network.type->option_count,
                                  cm_network_options(&c->network));
    const char *const shape_keys[] = {"image_channels", "image_height", "image_width"};
    size_t *shape[] = {&c->network.image_channels, &c->network.image_height, &c->network.image_width};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(network, shape_keys[i]);
        if (item && !integer_value(item, 1e9, shape[i]))
            return cm_error_set(CM_ERR_FORMAT, "%s: \"%s\" must be an integer", name,
                                shape_keys[i]);
    }
    static const char *const skip[] = {"type", "dim", "image_channels", "image_height",
                                       "image_width"};
    return read_object(network, &options, 1, skip, COUNT(skip), name);
}

/* Format 2: {"method": {...}, "network": {...}, "optimizer": {...}, run keys}. */
static cm_status read_nested(cm_train_config *c, const cJSON *root, const char *name) {
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    const cJSON *network = cJSON_GetObjectItemCaseSensitive(root, "network");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(method, "method");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(network, "type");
    size_t dim;
    if (!cJSON_IsObject(network) || !cJSON_IsString(kind) || !cJSON_IsString(type) ||
        !integer_value(cJSON_GetObjectItemCaseSensitive(network, "dim"), 1e9, &dim))
        return cm_error_set(CM_ERR_FORMAT, "%s: configuration needs \"method\": {\"method\"}, "
                            "\"network\": {\"type\", \"dim\"}", name);
    cm_method method_value;
    const cm_network_type *type_value;
    if (cm_method_parse(&method_value, kind->valuestring) != CM_OK ||
        cm_network_type_parse(&type_value, type->valuestring) != CM_OK)
        return cm_error_set(CM_ERR_FORMAT, "%s: %s", name, cm_error_detail());
    *c = cm_train_config_default_network(method_value, type_value, dim);
    reading_table method_table = table(method_fields, COUNT(method_fields), &c->method);
    reading_table optimizer_table = table(optimizer_fields, COUNT(optimizer_fields), &c->optimizer);
    reading_table run_table = table(run_fields, COUNT(run_fields), c);
    CM_TRY(read_object(method, &method_table, 1, NULL, 0, name));
    CM_TRY(read_network(c, network, name));
    const cJSON *optimizer = cJSON_GetObjectItemCaseSensitive(root, "optimizer");
    if (optimizer && !cJSON_IsObject(optimizer))
        return cm_error_set(CM_ERR_FORMAT, "%s: \"optimizer\" must be an object", name);
    if (optimizer) CM_TRY(read_object(optimizer, &optimizer_table, 1, NULL, 0, name));
    static const char *const skip[] = {"method", "network", "optimizer"};
    return read_object(root, &run_table, 1, skip, COUNT(skip), name);
}

/* A key that appears twice among the members of `object`, or NULL. */
static const char *repeated_key(const cJSON *object) {
    for (const cJSON *a = object->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0) return a->string;
    return NULL;
}

cm_status cm_train_config_from_json(cm_train_config *out, const char *json, const char *name) {
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return cm_error_set(CM_ERR_FORMAT, "%s: configuration is not a JSON object", name);
    }
    const char *repeated = repeated_key(root);
    for (const cJSON *item = root->child; item && !repeated; item = item->next)
        if (cJSON_IsObject(item)) repeated = repeated_key(item);
    if (repeated) {
        cm_status status = cm_error_set(CM_ERR_FORMAT, "%s: configuration key \"%.64s\" given "
                                        "twice", name, repeated);
        cJSON_Delete(root);
        return status;
    }
    cm_train_config config;
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    cm_status status;
    if (cJSON_IsString(method)) status = read_flat(&config, root, name);
    else if (cJSON_IsObject(method)) status = read_nested(&config, root, name);
    else status = cm_error_set(CM_ERR_FORMAT, "%s: configuration needs \"method\"", name);
    cJSON_Delete(root);
    CM_TRY(status);
    status = cm_train_config_check(&config);
    if (status == CM_ERR_NOMEM) return status;
    if (status != CM_OK) return cm_error_set(CM_ERR_FORMAT, "%s: %s", name, cm_error_detail());
    *out = config;
    return CM_OK;
}
