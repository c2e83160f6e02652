/**
 * How `p` ends within `ms`: 'answered' (resolved), the rejection's message, or 'still waiting'.
 * The wait is a ref'd timer, so a test whose code under test only has unref'd timers stays alive
 * until the verdict; a promise that never settles fails the test instead of hanging it.
 */
export async function outcomeWithin(p: Promise<unknown>, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(
        () => 'answered',
        (e: unknown) => (e instanceof Error ? e.message : String(e)),
      ),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still waiting'), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
