// What LoomIO needs from Linux that Glibc's Swift module leaves out: epoll, eventfd, sendfile,
// and accept4, which <sys/socket.h> declares only under _GNU_SOURCE.
#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <pthread.h>

extern int pthread_setname_np(pthread_t thread, const char *name);
extern int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
#endif
