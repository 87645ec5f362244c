/* netcore-setuser [-t] [-c CAPS] [-n] [-s FD] [-e K=V]... UID GID GROUPS CMD [ARG...]
 *
 * Become UID:GID with the supplementary groups GROUPS (comma-separated gids, "-" for
 * none), then exec CMD (searched in PATH, environment as is).
 *
 * bwrap cannot change the user without a user namespace, and a container's image may hold
 * no tool that can: the launcher binds this static binary into the container's /dev and
 * runs it as pid 1 in front of the command (the user switch runc does before its exec).
 * `netcore exec` runs it too, through nsenter, to give the exec'd process what the
 * container's pid 1 has: -c CAPS keeps only the capabilities in the hex mask CAPS
 * (bounding, permitted, effective, inheritable; ambient cleared), -n sets no_new_privs,
 * -s FD loads the seccomp BPF program read from FD, -e K=V (repeated) is the whole
 * environment of CMD. -t makes the process a session leader with its stdin (a pty's
 * end) as controlling terminal, for `run -t`: bwrap leaves the command in the monitor's
 * session.
 * Exit codes follow Docker's: 127 for a command not found, 126 for one that cannot run. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fail(const char *what) {
    fprintf(stderr, "netcore-setuser: %s: %s\n", what, strerror(errno));
    return 125;
}

int main(int argc, char **argv) {
    uint64_t caps = 0;
    int have_caps = 0, nnp = 0, seccomp_fd = -1, cleared = 0, tty = 0, opt;
    while ((opt = getopt(argc, argv, "+tc:ns:e:")) != -1) {
        if (opt == 't') tty = 1;
        else if (opt == 'c') { caps = strtoull(optarg, NULL, 16); have_caps = 1; }
        else if (opt == 'e') {
            if (!cleared++) clearenv();
            if (putenv(optarg)) return fail("cannot set the environment");
        }
        else if (opt == 'n') nnp = 1;
        else if (opt == 's') seccomp_fd = atoi(optarg);
        else return 125;
    }
    argc -= optind;
    argv += optind;
    if (argc < 4) {
        fprintf(stderr, "usage: netcore-setuser [-t] [-c CAPS] [-n] [-s FD] [-e K=V]... UID GID GROUPS CMD [ARG...]\n");
        return 125;
    }
    uid_t uid = (uid_t)strtoul(argv[0], NULL, 10);
    gid_t gid = (gid_t)strtoul(argv[1], NULL, 10);
    gid_t groups[64];
    size_t n = 0;
    if (strcmp(argv[2], "-") != 0) {
        for (char *s = strtok(argv[2], ","); s && n < 64; s = strtok(NULL, ","))
            groups[n++] = (gid_t)strtoul(s, NULL, 10);
    }
    if (tty && (setsid() < 0 || ioctl(0, TIOCSCTTY, 1) < 0))
        return fail("cannot make stdin the controlling terminal");
    if (have_caps) {
        for (int c = 0; c < 64; c++)
            if (!(caps & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) && errno != EINVAL)
                return fail("cannot drop a capability from the bounding set");
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    }
    if (setgroups(n, groups) || setgid(gid) || setuid(uid)) {
        fprintf(stderr, "netcore-setuser: cannot become %s:%s: %s\n", argv[0], argv[1], strerror(errno));
        return 125;
    }
    if (have_caps && uid == 0) {
        struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof data);
        for (int i = 0; i < 2; i++)
            data[i].effective = data[i].permitted = data[i].inheritable = (uint32_t)(caps >> (32 * i));
        if (syscall(SYS_capset, &hdr, data))
            return fail("cannot set capabilities");
    }
    if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        return fail("cannot set no_new_privs");
    if (seccomp_fd >= 0) {
        static struct sock_filter prog[BPF_MAXINSNS];
        size_t got = 0;
        ssize_t r;
        while ((r = read(seccomp_fd, (char *)prog + got, sizeof prog - got)) > 0)
            got += (size_t)r;
        close(seccomp_fd);
        struct sock_fprog fprog = {(unsigned short)(got / sizeof prog[0]), prog};
        if (r < 0 || got == 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0))
            return fail("cannot load the seccomp program");
    }
    execvp(argv[3], argv + 3);
    int e = errno;
    fprintf(stderr, "exec: \"%s\": %s\n", argv[3], strerror(e));
    return e == ENOENT ? 127 : 126;
}
