import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocatorEnv, jemallocPaths, loadedAllocator } from './allocator.js';

const PATHS = [
  '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/usr/lib64/libjemalloc.so.2',
  '/usr/lib/libjemalloc.so.2',
];

const only = (path: string) => (p: string) => p === path;

test('allocator: a re-executed child preloads the first jemalloc library installed, after what LD_PRELOAD already holds (a malloc wrapper stays in front) (issue #14)', () => {
  assert.deepEqual(allocatorEnv({}, only(PATHS[2]!), PATHS), { LD_PRELOAD: PATHS[2] });
  assert.deepEqual(
    allocatorEnv({}, () => true, PATHS),
    { LD_PRELOAD: PATHS[0] },
  );
  assert.deepEqual(allocatorEnv({ LD_PRELOAD: ' /opt/libtrace.so ' }, only(PATHS[0]!), PATHS), {
    LD_PRELOAD: `/opt/libtrace.so ${PATHS[0]}`,
  });
  // This machine's multiarch directory is searched, whatever its triplet.
  const found = jemallocPaths();
  assert.ok(found.includes('/usr/lib64/libjemalloc.so.2'));
  assert.ok(found.every((p) => p.endsWith('/libjemalloc.so.2')));
  if (process.arch === 'x64' && process.platform === 'linux')
    assert.ok(found.includes('/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'));
});

test('allocator: nothing is preloaded with IKEGATE_ALLOCATOR=system, when LD_PRELOAD already names an allocator, or when none is installed (issue #14)', () => {
  assert.deepEqual(
    allocatorEnv({ IKEGATE_ALLOCATOR: 'system' }, () => true, PATHS),
    {},
  );
  for (const lib of ['/usr/lib/libjemalloc.so.2', '/usr/lib/libtcmalloc_minimal.so.4', '/x/libmimalloc.so'])
    assert.deepEqual(
      allocatorEnv({ LD_PRELOAD: lib }, () => true, PATHS),
      {},
      lib,
    );
  assert.deepEqual(
    allocatorEnv({}, () => false, PATHS),
    {},
  );
});

test('allocator: the one mapped into a process is read from its /proc/self/maps (issue #14)', () => {
  const line = (path: string) => `7f1c2a400000-7f1c2a4a0000 r-xp 00000000 08:01 1234  ${path}\n`;
  assert.equal(loadedAllocator(line('/usr/lib/x86_64-linux-gnu/libc.so.6')), 'system');
  assert.equal(loadedAllocator(line('/usr/lib/x86_64-linux-gnu/libjemalloc.so.2')), 'jemalloc');
  assert.equal(loadedAllocator(line('/usr/lib/libtcmalloc.so.4')), 'tcmalloc');
  assert.equal(loadedAllocator(''), 'system');
  assert.equal(
    loadedAllocator(line('/opt/libjemalloc-tools/bin/x')),
    'system',
    'a directory is not a library',
  );
  // This test process runs on what its LD_PRELOAD says (glibc's without one).
  const preload = process.env['LD_PRELOAD'] ?? '';
  assert.equal(loadedAllocator(), /libjemalloc/.test(preload) ? 'jemalloc' : 'system');
});
