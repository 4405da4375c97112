/* avx2only: run a process as if its x86-64 CPU had AVX2 but no AVX-512, AVX-VNNI or AMX.
 *
 * Benchmarks of govfacts must hold on plain AVX2 machines, where int8 matrix kernels gain little, and
 * every numeric library (MKL, oneDNN, FBGEMM, ONNX Runtime's MLAS, numpy) picks its kernels from the
 * CPUID instruction. Preloaded (LD_PRELOAD), this library turns on the kernel's CPUID faulting
 * (arch_prctl ARCH_SET_CPUID, Linux >= 4.12 on CPUs flagged `cpuid_fault`): each CPUID then raises
 * SIGSEGV, which it answers with the real CPUID result with the AVX-512, AVX-VNNI, AMX and AVX10 bits
 * cleared. The libraries then run the AVX2 kernels they run on a plain AVX2 machine, on this machine's
 * cores. glibc reads CPUID before any preloaded library runs: set GLIBC_TUNABLES as well
 * (bench/isa.py does).
 *
 * A SIGSEGV handler the program installs is kept and called for every other fault. If
 * AVX2ONLY_COUNT names a file, the number of answered CPUIDs is appended to it at exit.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef ARCH_SET_CPUID
#define ARCH_SET_CPUID 0x1012
#endif

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static struct sigaction program_segv;   /* what the program asked for SIGSEGV */
static int active;                      /* CPUID faulting is on and our handler installed */
static volatile unsigned long answered; /* CPUIDs answered */

static sigaction_fn real_sigaction(void) {
    static sigaction_fn fn;
    if (!fn) fn = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    return fn;
}

static long set_cpuid(int enabled) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

#define BIT(n) (1u << (n))

static void mask(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    if (leaf == 7 && sub == 0) {
        /* EBX: AVX512F, DQ, IFMA, PF, ER, CD, BW, VL */
        r[1] &= ~(BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31));
        /* ECX: AVX512_VBMI, VBMI2, GFNI, AVX512_VNNI, BITALG, VPOPCNTDQ */
        r[2] &= ~(BIT(1) | BIT(6) | BIT(8) | BIT(11) | BIT(12) | BIT(14));
        /* EDX: 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512_FP16, AMX-TILE, AMX-INT8 */
        r[3] &= ~(BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25));
    } else if (leaf == 7 && sub == 1) {
        /* EAX: AVX-VNNI, AVX512_BF16, AMX-FP16, AVX-IFMA; EDX: AVX-VNNI-INT8, AVX-NE-CONVERT,
         * AMX-COMPLEX, AVX-VNNI-INT16, AVX10 */
        r[0] &= ~(BIT(4) | BIT(5) | BIT(21) | BIT(23));
        r[3] &= ~(BIT(4) | BIT(5) | BIT(8) | BIT(10) | BIT(19));
    } else if (leaf == 0xD && sub == 0) {
        /* XSAVE state components: opmask, ZMM_Hi256, Hi16_ZMM, AMX tile config and data */
        r[0] &= ~(BIT(5) | BIT(6) | BIT(7) | BIT(17) | BIT(18));
    } else if (leaf == 0x1D || leaf == 0x1E || leaf == 0x24) {
        r[0] = r[1] = r[2] = r[3] = 0; /* AMX tile and AVX10 leaves */
    }
}

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = (ucontext_t *)ctx;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (si->si_code == SI_KERNEL && ip[0] == 0x0F && ip[1] == 0xA2) {
        uint32_t r[4];
        uint32_t leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX];
        set_cpuid(1);
        cpuid(leaf, sub, r);
        set_cpuid(0);
        mask(leaf, sub, r);
        g[REG_RAX] = r[0];
        g[REG_RBX] = r[1];
        g[REG_RCX] = r[2];
        g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        answered++;
        return;
    }
    /* not ours: the program's handler, or the default action (re-raised on return) */
    if (program_segv.sa_flags & SA_SIGINFO) {
        if (program_segv.sa_sigaction) {
            program_segv.sa_sigaction(sig, si, ctx);
            return;
        }
    } else if (program_segv.sa_handler != SIG_DFL && program_segv.sa_handler != SIG_IGN) {
        program_segv.sa_handler(sig);
        return;
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    real_sigaction()(SIGSEGV, &dfl, NULL);
}

/* The program's SIGSEGV handler is recorded, not installed: ours stays first in line. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (sig == SIGSEGV && active) {
        if (old) *old = program_segv;
        if (act) program_segv = *act;
        return 0;
    }
    return real_sigaction()(sig, act, old);
}

static void report(void) {
    const char *path = getenv("AVX2ONLY_COUNT");
    if (!path || !*path) return;
    FILE *fh = fopen(path, "a");
    if (fh) {
        fprintf(fh, "%d %lu\n", (int)getpid(), answered);
        fclose(fh);
    }
}

__attribute__((constructor)) static void start(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (real_sigaction()(SIGSEGV, &sa, &program_segv) != 0) return;
    if (set_cpuid(0) != 0) {
        real_sigaction()(SIGSEGV, &program_segv, NULL);
        fprintf(stderr, "avx2only: CPUID faulting is not available on this machine (no cpuid_fault)\n");
        _exit(97);
    }
    active = 1;
    atexit(report);
}
