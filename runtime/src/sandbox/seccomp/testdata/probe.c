/* probe: makes raw syscalls and prints the errno each gives, for the seccomp tests.
 *
 *   probe [--filter FILE] [--status] CALL...
 *
 * --filter FILE  first sets no_new_privs and loads FILE (raw struct sock_filter entries)
 *                as a seccomp filter, as a container runtime does before exec.
 * --status       prints the Seccomp lines of /proc/self/status.
 * CALL           ABI:NR[:ARG0[:ARG1[:ARG2]]], ABI one of 64 (syscall), x32 (syscall with
 *                __X32_SYSCALL_BIT added to NR) or 32 (int $0x80, the i386 ABI); numbers
 *                in C notation. Prints "CALL ERRNO" (0: the call succeeded).
 *
 * The tests pick calls that are harmless when a filter lets them through (invalid
 * arguments, queries), so a wrong filter shows as a wrong errno and nothing else.
 * Built statically (cc -static) so it also runs in a busybox container.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static long call32(unsigned long nr, unsigned long a, unsigned long b, unsigned long c) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return r < 0 && r > -4096 ? -r : 0;
}

static long call64(unsigned long nr, unsigned long a, unsigned long b, unsigned long c) {
    return syscall(nr, a, b, c, 0, 0, 0) < 0 ? errno : 0;
}

static int load_filter(const char *path) {
    static struct sock_filter insns[4096];
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t n = fread(insns, sizeof insns[0], 4096, f);
    fclose(f);
    struct sock_fprog prog = {.len = (unsigned short)n, .filter = insns};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
        perror("loading the filter");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--filter") && i + 1 < argc) {
            if (load_filter(argv[++i]) < 0)
                return 2;
        } else if (!strcmp(argv[i], "--status")) {
            char line[256];
            FILE *f = fopen("/proc/self/status", "r");
            while (f && fgets(line, sizeof line, f))
                if (!strncmp(line, "Seccomp", 7))
                    fputs(line, stdout);
            if (f)
                fclose(f);
        } else {
            char abi[8] = "";
            unsigned long v[4] = {0, 0, 0, 0};
            char *p = strchr(argv[i], ':');
            if (!p || p - argv[i] >= (long)sizeof abi) {
                fprintf(stderr, "bad call %s\n", argv[i]);
                return 2;
            }
            memcpy(abi, argv[i], p - argv[i]);
            for (int k = 0; k < 4 && p && *p == ':'; k++)
                v[k] = strtoul(p + 1, &p, 0);
            long e;
            if (!strcmp(abi, "64"))
                e = call64(v[0], v[1], v[2], v[3]);
            else if (!strcmp(abi, "x32"))
                e = call64(v[0] | 0x40000000UL, v[1], v[2], v[3]);
            else if (!strcmp(abi, "32"))
                e = call32(v[0], v[1], v[2], v[3]);
            else {
                fprintf(stderr, "bad ABI %s\n", abi);
                return 2;
            }
            printf("%s %ld\n", argv[i], e);
        }
    }
    return 0;
}
