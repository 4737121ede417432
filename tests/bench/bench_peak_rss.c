/*
 * peak_rss.c - runs a command and prints its wall time and peak resident set (wait4), the way
 * `make bench` checks the memory bound on a checkpoint larger than 2 GB.
 *
 *   peak_rss LABEL COMMAND [ARGS...]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fputs("usage: peak_rss LABEL COMMAND [ARGS...]\n", stderr);
        return 2;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double t = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    printf("%-9s %.2f s, peak RSS %.1f MiB (target <= 256 MiB), exit %d\n", argv[1], t,
           (double)ru.ru_maxrss / 1024.0, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
