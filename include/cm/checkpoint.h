/* checkpoint.h: crash-safe training checkpoints and exact resume (docs/checkpoints.md).
 *
 * A checkpoint is a model file (model.h: the evaluation weights as "mlp.<l>.*" and the cm.*
 * model metadata, so `cm sample` reads it) plus the training state of cm_trainer_state:
 * F32 tensors "train.params", "train.adam.m", "train.adam.v" [P] and, for ct and the sequential
 * [LHW] teacher, "train.target" [P]; metadata "cm.checkpoint.version", ".step", ".adam_step",
 * ".stage", ".rng" (every stream's key and position), ".curriculum" (N(k), mu(k) of the next step,
 * checked on reading), and for file data ".data_file" (rows, columns and an FNV-1a hash of the
 * values, so a resumed run refuses a changed file). Files are written through
 * cm_file_write_atomic: the previous checkpoint survives a crash at any instant.
 */
#ifndef CM_CHECKPOINT_H
#define CM_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "cm/config.h"
#include "cm/data.h"
#include "cm/train.h"

#define CM_CHECKPOINT_VERSION 2
/* Name of the checkpoint of a run directory, and of the directory of its numbered checkpoints. */
#define CM_CHECKPOINT_RUN_FILE "checkpoint.safetensors"
#define CM_CHECKPOINT_RUN_DIR "checkpoints"

typedef struct cm_checkpoint cm_checkpoint; /* a checkpoint read and validated; opaque */

/* Write the state of `trainer` to `path`, with `extra_count` more metadata pairs (keys must
 * start with "cm.cli.": settings of the program that are not part of the run, e.g. threads). */
cm_status cm_checkpoint_save(const char *path, cm_trainer *trainer, const char *const *extra_keys,
                             const char *const *extra_values, size_t extra_count);

/* Read and validate everything that can be checked without the data: the model part
 * (cm_model_load), the format version, step, stage, tensors' shapes and finiteness, the streams
 * and the curriculum. *out is owned by the caller: cm_checkpoint_free. */
cm_status cm_checkpoint_read(cm_checkpoint **out, const char *path);
void cm_checkpoint_free(cm_checkpoint *checkpoint);

/* The stored run: its config, steps completed, data source (as cm_data_describe gave it) and a
 * metadata value (NULL when absent). Owned by the checkpoint. */
const cm_train_config *cm_checkpoint_config(const cm_checkpoint *checkpoint);
size_t cm_checkpoint_step(const cm_checkpoint *checkpoint);
const char *cm_checkpoint_data_source(const cm_checkpoint *checkpoint);
const char *cm_checkpoint_metadata(const cm_checkpoint *checkpoint, const char *key);

/* A trainer that continues the stored run on `data` (borrowed; must outlive the trainer): a law
 * must have the stored description, a file the stored rows, columns and hash (CM_ERR_INVALID
 * otherwise). Its next step is step cm_checkpoint_step + 1, bit-identical to the uninterrupted
 * run's. */
cm_status cm_checkpoint_restore(cm_trainer **out, const cm_checkpoint *checkpoint,
                                const cm_data *data);
/* The same for one process of several (cm_trainer_init_comm): every process restores the same
 * checkpoint, whatever process count wrote it; the run continues with the same bits. */
cm_status cm_checkpoint_restore_comm(cm_trainer **out, const cm_checkpoint *checkpoint,
                                     const cm_data *data, const cm_comm *comm);

/* FNV-1a 64 of a file source's rows, columns and values (bit patterns); 0 for laws. */
uint64_t cm_checkpoint_data_hash(const cm_data *data);

/* ---- Run directories: DIR/checkpoints/step-%08zu.safetensors, and DIR/checkpoint.safetensors
 * (a symbolic link to the newest, replaced atomically; a copy where links are refused). One
 * writer per directory (the CLI holds a lock). */

/* Save the trainer as DIR/checkpoints/step-<step>.safetensors, point DIR/checkpoint.safetensors
 * at it, then delete all but the newest `keep` >= 1 numbered checkpoints and any temporary file
 * a crash left behind (deletion is best effort). out_path[capacity] receives the file written. */
cm_status cm_checkpoint_save_run(char *out_path, size_t capacity, const char *dir,
                                 cm_trainer *trainer, size_t keep, const char *const *extra_keys,
                                 const char *const *extra_values, size_t extra_count);
/* Delete DIR/checkpoint.safetensors and every numbered checkpoint of DIR (a new run starts). */
cm_status cm_checkpoint_clear_run(const char *dir);

#endif
