// vt-identity: what makes a restored clone its own machine, in one small static program (no libc) that the tiny
// image carries as /bin/vt-identity and that agent/vm/identity.ts sends to other guests that lack it.
//   vt-identity <hostname|-> <unix time in ms|-> [<128 hex digits: 64 bytes of fresh randomness from the host>]
//   vt-identity --serve <request fifo> <answer fifo>
// Sets the hostname, the clock (it stood still since the save) and mixes the bytes into the kernel's input pool,
// crediting them (RNDADDENTROPY), then reseeds the CRNG at once (RNDRESEEDCRNG): a plain write to /dev/urandom
// would be used only at the next timed reseed, so two clones would go on producing the same random bytes.
// --serve: the tiny guest's /init starts it at boot, so a restored clone's identity costs no fork and exec (cold
// code paths are slow under TCG right after a restore): each request is the three words as one line written to
// the request fifo; the exit code goes back as a line on the answer fifo. It never exits on a bad request.
// Exit codes (apart from a shell's): 0 done, 81 usage, 82 sethostname, 83 clock_settime, 84 cannot open
// /dev/urandom, 85 RNDADDENTROPY, 86 RNDRESEEDCRNG. Built by scripts/build-vt-identity.sh, which writes
// agent/image/identity/program.ts.

typedef unsigned long u64;

static long sys(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}

static __attribute__((noreturn)) void quit(int code) {
  for (;;) sys(60, code, 0, 0);
}

static int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

static int is(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

struct pool {
  int bits;
  int bytes;
  unsigned char buf[64];
};

/** Applies what is given (a null or "-" word is left alone); returns the exit code. */
static int apply(char *name, char *ms, char *h) {
  if (name && !is(name, "-")) {
    long n = 0;
    while (name[n]) n++;
    if (sys(170, (long)name, n, 0) != 0) return 82; // sethostname
  }
  if (ms && !is(ms, "-")) {
    u64 v = 0;
    for (char *p = ms; *p; p++) {
      if (*p < '0' || *p > '9') return 81;
      v = v * 10 + (u64)(*p - '0');
    }
    long ts[2] = {(long)(v / 1000), (long)(v % 1000) * 1000000};
    if (sys(227, 0, (long)ts, 0) != 0) return 83; // clock_settime(CLOCK_REALTIME)
  }
  if (!h) return 0;
  struct pool p = {512, 64, {0}};
  for (int i = 0; i < 64; i++) {
    int a = hex(h[2 * i]);
    if (a < 0) return 81;
    int b = hex(h[2 * i + 1]);
    if (b < 0) return 81;
    p.buf[i] = (unsigned char)(a * 16 + b);
  }
  long fd = sys(2, (long)"/dev/urandom", 1, 0); // open O_WRONLY
  if (fd < 0) return 84;
  int rc = 0;
  if (sys(16, fd, 0x40085203, (long)&p) != 0) rc = 85;              // ioctl RNDADDENTROPY
  else if (sys(16, fd, 0x5207, 0) != 0) rc = 86;                    // ioctl RNDRESEEDCRNG
  sys(3, fd, 0, 0);
  return rc;
}

static __attribute__((noreturn)) void serve(const char *in, const char *out) {
  static char buf[512];
  for (;;) {
    long fd = sys(2, (long)in, 0, 0); // blocks until a writer opens it
    if (fd < 0) quit(81);
    long n = 0, r;
    while (n < (long)sizeof buf - 1 && (r = sys(0, fd, (long)(buf + n), sizeof buf - 1 - n)) > 0) n += r;
    sys(3, fd, 0, 0);
    buf[n] = 0;
    char *w[3] = {0, 0, 0};
    int k = 0;
    for (char *p = buf; *p && k < 3;) {
      while (*p == ' ' || *p == '\n') *p++ = 0;
      if (!*p) break;
      w[k++] = p;
      while (*p && *p != ' ' && *p != '\n') p++;
    }
    int rc = k < 2 ? 81 : apply(w[0], w[1], w[2]);
    char ans[3] = {(char)('0' + rc / 10), (char)('0' + rc % 10), '\n'};
    int skip = rc < 10; // "0\n", "82\n"
    long o = sys(2, (long)out, 1, 0); // blocks until the reader opens it
    if (o >= 0) {
      sys(1, o, (long)(ans + skip), 3 - skip);
      sys(3, o, 0, 0);
    }
  }
}

__attribute__((used)) void main_c(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  if (argc == 4 && is(argv[1], "--serve")) serve(argv[2], argv[3]);
  if (argc < 3) quit(81);
  quit(apply(argv[1], argv[2], argc > 3 ? argv[3] : 0));
}

__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call main_c\n");
