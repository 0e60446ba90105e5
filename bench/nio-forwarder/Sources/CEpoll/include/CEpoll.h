// What epoll-forwarder needs that Glibc's Swift module leaves out: <sys/epoll.h>, and
// accept4, which <sys/socket.h> declares only under _GNU_SOURCE.
#include <sys/epoll.h>
#include <sys/socket.h>

extern int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
