/*
 * CNI VERSION before the .NET runtime starts.
 *
 * podman calls VERSION on every plugin of every conflist, about four times per `podman run`, even for containers that
 * are not on our networks. The Native-AOT runtime's start-up (GC heap, threads, page faults of the image) costs ~6 ms
 * on a small VM, over the 2 ms any exec costs; this constructor runs before main(), answers VERSION and exits, so the
 * call costs what an exec of a small C program costs.
 *
 * The answer must stay byte-identical to Discovery.Cni.CniPlugin.VersionAnswer (the managed path, which answers when
 * this file is not linked: tests, `dotnet run`); tests/Integration.Tests/Cni compares the two on the built binary.
 * Like the managed path, VERSION reads no stdin and looks at no other variable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char answer[] = "{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"1.0.0\",\"1.1.0\"]}\n";

__attribute__((constructor)) static void discovery_cni_version(void)
{
    const char *command = getenv("CNI_COMMAND");
    if (command == NULL || strcmp(command, "VERSION") != 0)
        return; /* everything else is the managed program's */
    const char *p = answer;
    size_t left = sizeof answer - 1;
    while (left > 0)
    {
        ssize_t n = write(STDOUT_FILENO, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(1); /* stdout closed: no answer, a failure as from the managed path (a pipe whose reader has
                         gone raises SIGPIPE first, which ends the process: the runtime that ignores it is not up) */
        p += n;
        left -= (size_t)n;
    }
    _exit(0);
}
