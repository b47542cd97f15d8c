// bench/Lb connection-rate target: answers one tiny HTTP/1.0 response per TCP connection and closes it, so the
// client's rate measures connection set-up (where NAT and conntrack cost) and not the server. One epoll loop, no
// threads. Usage: conn-server PORT LIFETIME_SECONDS. It exits by itself after LIFETIME_SECONDS (alarm), so a bench
// that dies without cleaning up cannot leave it running for long.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: conn-server PORT LIFETIME_SECONDS\n"); return 2; }
    int port = atoi(argv[1]), lifetime = atoi(argv[2]);
    if (port < 1 || port > 65535 || lifetime < 1) { fprintf(stderr, "conn-server: bad port or lifetime\n"); return 2; }
    alarm((unsigned)lifetime);   // default SIGALRM action ends the process

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    if (listener < 0 || bind(listener, (struct sockaddr *)&any, sizeof any) != 0 || listen(listener, 8192) != 0) {
        perror("conn-server: listen");
        return 1;
    }
    int poller = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event add = { .events = EPOLLIN, .data.fd = listener };
    epoll_ctl(poller, EPOLL_CTL_ADD, listener, &add);
    printf("listening %d\n", port);
    fflush(stdout);

    struct epoll_event ready[512];
    char request[2048];
    for (;;) {
        int n = epoll_wait(poller, ready, 512, -1);
        for (int i = 0; i < n; i++) {
            int fd = ready[i].data.fd;
            if (fd == listener) {
                int conn;
                while ((conn = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event in = { .events = EPOLLIN, .data.fd = conn };
                    epoll_ctl(poller, EPOLL_CTL_ADD, conn, &in);
                }
                continue;
            }
            // ab sends its whole request in one segment: answer on the first read, whatever it holds, and close.
            if (read(fd, request, sizeof request) > 0 && write(fd, reply, sizeof reply - 1) < 0) { /* peer gone */ }
            close(fd);
        }
    }
}
