/* netcore-setuser UID GID GROUPS CMD [ARG...]: become UID:GID with the supplementary groups
 * GROUPS (comma-separated gids, "-" for none), then exec CMD (searched in PATH).
 *
 * bwrap cannot change the user without a user namespace, and a container's image may hold
 * no tool that can: the launcher binds this static binary into the container's /dev and
 * runs it as pid 1 in front of the command (the user switch runc does before its exec).
 * Exit codes follow Docker's: 127 for a command not found, 126 for one that cannot run. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: netcore-setuser UID GID GROUPS CMD [ARG...]\n");
        return 125;
    }
    uid_t uid = (uid_t)strtoul(argv[1], NULL, 10);
    gid_t gid = (gid_t)strtoul(argv[2], NULL, 10);
    gid_t groups[64];
    size_t n = 0;
    if (strcmp(argv[3], "-") != 0) {
        for (char *s = strtok(argv[3], ","); s && n < 64; s = strtok(NULL, ","))
            groups[n++] = (gid_t)strtoul(s, NULL, 10);
    }
    if (setgroups(n, groups) || setgid(gid) || setuid(uid)) {
        fprintf(stderr, "netcore-setuser: cannot become %s:%s: %s\n", argv[1], argv[2], strerror(errno));
        return 125;
    }
    execvp(argv[4], argv + 4);
    int e = errno;
    fprintf(stderr, "exec: \"%s\": %s\n", argv[4], strerror(e));
    return e == ENOENT ? 127 : 126;
}
