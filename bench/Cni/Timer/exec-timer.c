/*
 * exec-timer RUNS STDIN_FILE PROGRAM...: runs each PROGRAM RUNS times, interleaved, the way Go's os/exec (libcni)
 * does it: one posix_spawn (vfork + exec) with stdin from STDIN_FILE and stdout to a pipe, read to the end, then
 * waitpid. Prints "PROGRAM MILLISECONDS" per run, CLOCK_MONOTONIC from before the spawn to after the wait. The first
 * run of each program is checked: it must exit 0 with "supportedVersions" in its output, or the timer exits 1.
 * bench/Cni compiles it at bench time (Program.cs); a bash loop adds bash's own fork of itself to every sample.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* One run; returns the elapsed ms, or -1 with a message on stderr. */
static double run(const char *program, const char *input, int check)
{
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) { perror("pipe2"); return -1; }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, input, O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    char *argv[] = { (char *)program, NULL };
    pid_t pid;
    double start = now_ms();
    int rc = posix_spawn(&pid, program, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (rc != 0) { fprintf(stderr, "%s: spawn failed: %s\n", program, strerror(rc)); close(out[0]); return -1; }
    char text[4096], rest[4096];
    size_t used = 0;
    for (;;)
    {
        /* The first 4 KiB is kept for the check (an answer is ~60 bytes); the rest is read to the end and dropped. */
        int full = used == sizeof text - 1;
        ssize_t n = full ? read(out[0], rest, sizeof rest) : read(out[0], text + used, sizeof text - 1 - used);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (!full) used += (size_t)n;
    }
    close(out[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) { perror("waitpid"); return -1; }
    double elapsed = now_ms() - start;
    text[used] = 0;
    if (check && (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || strstr(text, "supportedVersions") == NULL))
    {
        fprintf(stderr, "%s: VERSION failed (status %d): %s\n", program, status, text);
        return -1;
    }
    return elapsed;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: exec-timer RUNS STDIN_FILE PROGRAM...\n"); return 2; }
    int runs = atoi(argv[1]);
    if (runs < 1 || runs > 10000) { fprintf(stderr, "RUNS must be 1-10000\n"); return 2; }
    for (int i = 0; i < runs; i++)
        for (int p = 3; p < argc; p++)
        {
            /* /bin/true prints nothing: only programs that answer VERSION are checked. */
            int check = i == 0 && strcmp(argv[p], "/bin/true") != 0;
            double ms = run(argv[p], argv[2], check);
            if (ms < 0) return 1;
            printf("%s %.4f\n", argv[p], ms);
        }
    return 0;
}
