/*
 * nvrtccheck.c - `make check-nvrtc`: every kernel family of kernels/, compiled by NVRTC for each
 * architecture named on the command line (sm_80 sm_90), as the cuda backend compiles them. Any
 * compile error or warning fails (exit 1). Without NVRTC it prints SKIP and the reason and
 * exits 77, which the Makefile counts as skipped. Needs no driver and no GPU.
 */
#include "../../verify/verify.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: nvrtccheck sm_XY...\n");
        return 2;
    }
    int compiled = 0, failed = 0;
    char nvrtc[96] = "", log[4096];
    for (int a = 1; a < argc; a++)
        for (int f = 0; f < mp_kfamily_count(); f++) {
            mp_err err = MP_ERR_INIT;
            mp_errcode rc = mp_cuda_compile_check(f, argv[a], nvrtc, sizeof nvrtc, log, sizeof log, &err);
            if (rc != MP_OK && !nvrtc[0]) {
                printf("check-nvrtc: SKIP: %s\n", err.msg);
                return 77;
            }
            if (rc != MP_OK) {
                printf("check-nvrtc: %s for %s: %s\n", mp_kfamily_name(f), argv[a], err.msg);
                failed++;
            } else if (log[0]) {
                printf("check-nvrtc: %s for %s: NVRTC warns: %s\n", mp_kfamily_name(f), argv[a], log);
                failed++;
            } else {
                compiled++;
            }
        }
    if (failed) {
        printf("check-nvrtc: %d of %d compiles failed or warned (%s)\n", failed, failed + compiled, nvrtc);
        return 1;
    }
    printf("check-nvrtc: %d kernel sources compiled for", compiled);
    for (int a = 1; a < argc; a++) printf(" %s", argv[a]);
    printf(" by %s, no warnings\n", nvrtc);
    return 0;
}
