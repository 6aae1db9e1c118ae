/* Replays fuzz inputs without libFuzzer: each argument is a file or a
 * directory of files, fed once to LLVMFuzzerTestOneInput. Built in every
 * lane, so the seed corpora and every crash ever found (regressions/) run
 * with gcc too, and under ASan in the asan lane. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        if (!f) {
                perror(path);
                return 1;
        }
        size_t cap = 1 << 16, len = 0;
        uint8_t *buf = malloc(cap);
        size_t n;
        while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
                len += n;
                if (len == cap) {
                        uint8_t *nb = realloc(buf, cap *= 2);
                        if (!nb) {
                                free(buf);
                                buf = NULL;
                        }
                        buf = nb;
                }
        }
        fclose(f);
        if (!buf)
                return 1;
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        return 0;
}

int main(int argc, char **argv)
{
        int files = 0, bad = 0;
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        perror(argv[i]);
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        bad += run_file(argv[i]);
                        files++;
                        continue;
                }
                struct dirent **names = NULL;
                int n = scandir(argv[i], &names, NULL, alphasort);
                for (int j = 0; j < n; j++) {
                        char path[4096];
                        snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
                        if (names[j]->d_name[0] != '.' && stat(path, &st) == 0 &&
                            S_ISREG(st.st_mode)) {
                                bad += run_file(path);
                                files++;
                        }
                        free(names[j]);
                }
                free(names);
        }
        printf("replayed %d input(s)\n", files);
        return bad ? 1 : 0;
}
