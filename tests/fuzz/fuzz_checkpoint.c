/* fuzz_checkpoint.c: fuzz target of checkpoint reading and restoring (cm_checkpoint_read, then
 * cm_checkpoint_restore and one step for small runs on built-in data): any file either fails
 * with a status or gives a trainer that steps without a crash. */
#include <string.h>

#include "cm/checkpoint.h"
#include "fuzz.h"

#define RESTORE_MAX_PARAMS 100000 /* restore only small runs (keeps the target fast) */
#define RESTORE_MAX_BATCH 256
#define RESTORE_MAX_DIM 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_scratch_file(data, size, "checkpoint.safetensors");
    cm_checkpoint *checkpoint = NULL;
    if (!path || cm_checkpoint_read(&checkpoint, path) != CM_OK) return 0;
    const cm_train_config *c = cm_checkpoint_config(checkpoint);
    const char *source = cm_checkpoint_data_source(checkpoint);
    cm_network *network = NULL;
    int small = cm_network_create(&network, &c->network) == CM_OK &&
                cm_network_param_count(network) <= RESTORE_MAX_PARAMS &&
                c->batch <= RESTORE_MAX_BATCH && c->network.dim <= RESTORE_MAX_DIM;
    cm_network_free(network);
    cm_data *training_data = NULL;
    if (small && !strchr(source, '/') && cm_data_open(&training_data, source) == CM_OK) {
        cm_trainer *trainer = NULL;
        if (cm_checkpoint_restore(&trainer, checkpoint, training_data) == CM_OK &&
            cm_trainer_steps_done(trainer) < c->steps)
            (void)cm_trainer_step(trainer, NULL);
        cm_trainer_free(trainer);
    }
    cm_data_free(training_data);
    cm_checkpoint_free(checkpoint);
    return 0;
}
