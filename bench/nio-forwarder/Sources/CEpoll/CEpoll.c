// Empty: CEpoll only exposes <sys/epoll.h> (include/CEpoll.h).
