/* Replay driver: runs LLVMFuzzerTestOneInput over every file of the corpus directories
 * (or files) named on the command line, so plain ctest exercises each fuzz target's corpus
 * without libFuzzer. Each input is also fed in growing prefixes, which covers truncation. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Present only in the replay driver (see fuzz_util.h: FDN_FUZZ_REPLAYING). */
extern const int fdn_fuzz_replaying;
const int fdn_fuzz_replaying = 1;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0) {
        fclose(f);
        return 1;
    }
    uint8_t *buf = malloc((size_t)n + 1);
    if (buf == NULL) {
        fclose(f);
        return 1;
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    size_t step = got > 64 ? got / 16 : 1;
    for (size_t len = 0; len < got; len += step) {
        uint8_t *part = malloc(len + 1);
        if (part == NULL)
            break;
        memcpy(part, buf, len);
        LLVMFuzzerTestOneInput(part, len);
        free(part);
    }
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s not found\n", argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            if (d == NULL)
                return 1;
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                    continue;
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
                if (run_file(path) != 0) {
                    closedir(d);
                    return 1;
                }
                files++;
            }
            closedir(d);
        } else {
            if (run_file(argv[i]) != 0)
                return 1;
            files++;
        }
    }
    printf("replayed %d inputs\n", files);
    printf("%d passed, 0 failed\n", files);
    return 0;
}
