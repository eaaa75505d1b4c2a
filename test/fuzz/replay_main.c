/*
 * main() for a fuzz target without libFuzzer: feeds it every file of its seed
 * corpus, so that make check runs each target over its corpus under gcc (and
 * under AddressSanitizer with --enable-asan).
 *
 *   replay_<target> [dir-or-file...]    default: the corpus built in (FUZZ_CORPUS)
 *
 * A directory is read one level deep, in name order; subdirectories and dot
 * files are skipped (so a directory of inputs kept out of the replay, such
 * as a crashes/ inside it, never slips in). A failed invariant or a crash
 * aborts, which fails the test.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef FUZZ_CORPUS
#define FUZZ_CORPUS NULL
#endif

#define REPLAY_MAX_INPUT (1024 * 1024)

/* Runs the target on one file; -1 when the file cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(REPLAY_MAX_INPUT);
    if (buf == NULL) {
        fclose(f);
        return -1;
    }
    size_t n = fread(buf, 1, REPLAY_MAX_INPUT, f);
    int toolong = !feof(f);
    fclose(f);
    if (toolong) {
        fprintf(stderr, "replay: %s: larger than %d bytes\n", path, REPLAY_MAX_INPUT);
        free(buf);
        return -1;
    }
    /* An exact-size copy, so that a read past the input's end is caught under ASan. */
    uint8_t *in = malloc(n ? n : 1);
    if (in == NULL) {
        free(buf);
        return -1;
    }
    memcpy(in, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

static int skip_name(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Runs every regular file of dir; the number run, or -1 on an error. */
static int replay_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, skip_name, alphasort), count = 0, failed = 0;
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;
        char *path = malloc(len);
        struct stat st;
        if (path == NULL) {
            return -1;
        }
        snprintf(path, len, "%s/%s", dir, names[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(path) == 0) {
                count++;
            } else {
                failed = 1;
            }
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return failed ? -1 : count;
}

int main(int argc, char **argv)
{
    const char *deflt[] = {FUZZ_CORPUS};
    const char *const *paths = argc > 1 ? (const char *const *)argv + 1 : deflt;
    int npaths = argc > 1 ? argc - 1 : 1, total = 0;
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

    if (paths[0] == NULL) {
        fprintf(stderr, "usage: %s corpus-dir-or-file...\n", prog);
        return 2;
    }
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 0; i < npaths; i++) {
        struct stat st;
        int n;
        if (stat(paths[i], &st) != 0) {
            fprintf(stderr, "%s: %s: %s\n", prog, paths[i], strerror(errno));
            return 1;
        }
        n = S_ISDIR(st.st_mode) ? replay_dir(paths[i]) : replay_file(paths[i]) == 0 ? 1 : -1;
        if (n < 0) {
            return 1;
        }
        if (n == 0) {
            fprintf(stderr, "%s: %s holds no input\n", prog, paths[i]);
            return 1;
        }
        total += n;
    }
    fuzz_teardown();
    printf("%s: %d inputs replayed without a failure\n", prog, total);
    return 0;
}
