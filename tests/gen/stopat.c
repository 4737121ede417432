/*
 * stopat.c - LD_PRELOAD shim that stops a process mid-way at a known point: the first fsync(2)
 * of a file whose path contains MP_STOP_AT creates the file MP_STOP_FLAG and never returns: the
 * process waits in pause(2) until a signal kills it. tests/sched/slurm.sh stops one part of a split
 * this way, once it has written a layer file and before its record, and cancels that task there
 * (scancel). A SIGSTOP would not do: Slurm sends SIGCONT before the kill, and a small part could
 * then finish (and merge the job) before the SIGKILL lands.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fsync(int fd);

int fsync(int fd)
{
    static int (*real)(int);
    static int stopped;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int rc = real(fd);
    const char *at = getenv("MP_STOP_AT"), *flag = getenv("MP_STOP_FLAG");
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = at && flag && !stopped ? readlink(link, path, sizeof path - 1) : -1;
    if (n > 0) {
        path[n] = '\0';
        if (strstr(path, at)) {
            stopped = 1;
            close(open(flag, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
            for (;;) pause();
        }
    }
    return rc;
}
