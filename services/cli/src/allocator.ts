/**
 * The memory allocator the data plane runs on (issue #14). A busy ikegate process spends 14-21% of
 * its CPU in glibc's malloc and free: node:crypto's cipher and key objects, their output buffers,
 * dgram's receive buffer, one of each per packet or per setup (perf, docs/performance.md). With
 * jemalloc preloaded the same tunnel ran about 20-25% faster here. So a process that re-executes itself
 * anyway, to hold its TUN device (libs/tun reexecWithTun: `ikegate up`, `connect`, a worker), has
 * its child preload jemalloc when the library is installed (Debian: libjemalloc2), unless
 * IKEGATE_ALLOCATOR=system, or LD_PRELOAD already names an allocator.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/**
 * Where distributions install jemalloc's shared library: Debian/Ubuntu's multiarch directory of
 * this machine (any `/usr/lib/<triplet>-linux-gnu`), then Fedora's and Alpine's.
 */
export function jemallocPaths(): string[] {
  let multiarch: string[] = [];
  try {
    multiarch = readdirSync('/usr/lib')
      .filter((d) => d.endsWith('-linux-gnu'))
      .map((d) => `/usr/lib/${d}/libjemalloc.so.2`);
  } catch {
    // no /usr/lib: none of these exist either
  }
  return [...multiarch, '/usr/lib64/libjemalloc.so.2', '/usr/lib/libjemalloc.so.2'];
}

/** An allocator's library file name (not a directory that happens to contain the word). */
const ALLOCATORS = /lib(jemalloc|tcmalloc|mimalloc)[^/\s]*\.so/;

/**
 * The variables a re-executed child should get so that it runs on jemalloc: LD_PRELOAD with the
 * first library of `paths` that exists, after anything `env` preloads already (a malloc wrapper
 * such as a heap profiler stays in front and reaches jemalloc through RTLD_NEXT). Empty when
 * IKEGATE_ALLOCATOR is `system`, when LD_PRELOAD already names an allocator, or when none is installed.
 */
export function allocatorEnv(
  env: NodeJS.ProcessEnv = process.env,
  exists: (path: string) => boolean = existsSync,
  paths: readonly string[] = jemallocPaths(),
): Record<string, string> {
  if (env['IKEGATE_ALLOCATOR'] === 'system') return {};
  const preload = (env['LD_PRELOAD'] ?? '').trim();
  if (ALLOCATORS.test(preload)) return {};
  const lib = paths.find((p) => exists(p));
  if (!lib) return {};
  return { LD_PRELOAD: preload === '' ? lib : `${preload} ${lib}` };
}

/** The allocator mapped into this process (`maps`: /proc/self/maps), for the start-up log. */
export function loadedAllocator(maps?: string): 'jemalloc' | 'tcmalloc' | 'mimalloc' | 'system' {
  let text = maps;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/maps', 'latin1');
    } catch {
      return 'system';
    }
  }
  const m = ALLOCATORS.exec(text);
  return m ? (m[1] as 'jemalloc' | 'tcmalloc' | 'mimalloc') : 'system';
}
