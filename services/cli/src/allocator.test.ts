import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocatorEnv, JEMALLOC_PATHS, loadedAllocator } from './allocator.js';

const only = (path: string) => (p: string) => p === path;

test('allocator: a re-executed child preloads the first jemalloc library installed, ahead of what LD_PRELOAD already holds (issue #14)', () => {
  assert.deepEqual(allocatorEnv({}, only(JEMALLOC_PATHS[2]!)), { LD_PRELOAD: JEMALLOC_PATHS[2] });
  assert.deepEqual(
    allocatorEnv({}, () => true),
    { LD_PRELOAD: JEMALLOC_PATHS[0] },
  );
  assert.deepEqual(allocatorEnv({ LD_PRELOAD: '/opt/libtrace.so' }, only(JEMALLOC_PATHS[0]!)), {
    LD_PRELOAD: `${JEMALLOC_PATHS[0]} /opt/libtrace.so`,
  });
});

test('allocator: nothing is preloaded with IKEGATE_ALLOCATOR=system, when LD_PRELOAD already names an allocator, or when none is installed (issue #14)', () => {
  assert.deepEqual(
    allocatorEnv({ IKEGATE_ALLOCATOR: 'system' }, () => true),
    {},
  );
  for (const lib of ['/usr/lib/libjemalloc.so.2', '/usr/lib/libtcmalloc_minimal.so.4', '/x/libmimalloc.so'])
    assert.deepEqual(
      allocatorEnv({ LD_PRELOAD: lib }, () => true),
      {},
      lib,
    );
  assert.deepEqual(
    allocatorEnv({}, () => false),
    {},
  );
});

test('allocator: the one mapped into a process is read from its /proc/self/maps (issue #14)', () => {
  const line = (path: string) => `7f1c2a400000-7f1c2a4a0000 r-xp 00000000 08:01 1234  ${path}\n`;
  assert.equal(loadedAllocator(line('/usr/lib/x86_64-linux-gnu/libc.so.6')), 'system');
  assert.equal(loadedAllocator(line('/usr/lib/x86_64-linux-gnu/libjemalloc.so.2')), 'jemalloc');
  assert.equal(loadedAllocator(line('/usr/lib/libtcmalloc.so.4')), 'tcmalloc');
  assert.equal(loadedAllocator(''), 'system');
  assert.ok(['jemalloc', 'tcmalloc', 'mimalloc', 'system'].includes(loadedAllocator()));
});
