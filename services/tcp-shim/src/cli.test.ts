import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseTcpShimArgs, runTcpShim } from './cli.js';
import { ikeMessage, send, startDaemon, startResponder, waitFor } from './testing.js';

describe('tcp-shim command line', () => {
  it('parses listen, upstream forms and TLS options', () => {
    assert.deepEqual(parseTcpShimArgs(['--listen', '10.0.0.2', '--upstream', '192.0.2.1:4500']), {
      listen: { address: '10.0.0.2' },
      upstream: { host: '192.0.2.1', port: 4500 },
    });
    const v6 = parseTcpShimArgs(['--listen', '::1', '--upstream', 'vpn.example.com']);
    assert.ok(v6 !== 'help');
    assert.deepEqual(v6.upstream, { host: 'vpn.example.com', port: 4500 });
    assert.deepEqual(
      parseTcpShimArgs([
        '--listen=10.0.0.2',
        '--upstream',
        '[2001:db8::1]:443',
        '--tls',
        '--insecure',
        '--servername',
        'vpn',
        '--keylog',
        '/tmp/k',
        '--ike-port',
        '0',
        '--connect-timeout',
        '500',
      ]),
      {
        listen: { address: '10.0.0.2', ikePort: 0 },
        upstream: {
          host: '2001:db8::1',
          port: 443,
          tls: { rejectUnauthorized: false, servername: 'vpn', keylogFile: '/tmp/k' },
        },
        connectTimeoutMs: 500,
      },
    );
    assert.equal(parseTcpShimArgs(['-h']), 'help');
  });

  it('gives clear usage errors', () => {
    const cases: [string[], RegExp][] = [
      [['--upstream', '192.0.2.1'], /--listen is required/],
      [['--listen', '10.0.0.2'], /--upstream is required/],
      [['--listen', 'eth0', '--upstream', 'x'], /--listen must be an IP address/],
      [['--listen', '10.0.0.2', '--upstream', 'x:99999'], /upstream port must be 1..65535/],
      [['--listen', '10.0.0.2', '--upstream', 'x:'], /empty port/],
      [['--listen', '10.0.0.2', '--upstream', 'x', '--insecure'], /--insecure needs --tls/],
      [['--listen', '10.0.0.2', '--upstream', 'x', '--tls', '--ca', '/nonexistent/ca.pem'], /--ca/],
      [['--listen', '10.0.0.2', '--upstream', 'x', '--bogus'], /Unknown option '--bogus'/],
      [['--listen', '10.0.0.2', '--upstream', 'x', '--ike-port', 'abc'], /--ike-port must be a number/],
    ];
    for (const [argv, re] of cases) {
      assert.throws(
        () => parseTcpShimArgs(argv),
        (err: unknown) =>
          err instanceof Error &&
          re.test(err.message) &&
          err.message.includes('usage: ikegate tcp-shim') &&
          (err as { code?: string }).code === 'IKEGATE_ERR_TCP_SHIM_USAGE',
        argv.join(' '),
      );
    }
  });

  it('runs the shim and logs one JSON line per event', async () => {
    const responder = await startResponder();
    const daemon = await startDaemon();
    const lines: string[] = [];
    const ac = new AbortController();
    const shim = await runTcpShim(
      [
        '--listen',
        '127.0.0.1',
        '--ike-port',
        '0',
        '--natt-port',
        '0',
        '--upstream',
        `127.0.0.1:${responder.port}`,
      ],
      { stdout: { write: (l: string) => lines.push(l) }, signal: ac.signal },
    );
    assert.ok(shim !== undefined);
    try {
      await send(daemon.ike, ikeMessage(40), shim.ports.ike);
      await waitFor(() => responder.connections[0]?.events.length === 2, 'frame');
    } finally {
      ac.abort();
      await waitFor(() => lines.some((l) => l.includes('"closed"')), 'closed line');
      await daemon.close();
      await responder.close();
    }
    const events = lines.map((l) => {
      assert.ok(l.endsWith('\n') && !l.slice(0, -1).includes('\n'));
      return (JSON.parse(l) as { event: string }).event;
    });
    assert.deepEqual(events.slice(0, 3), ['listening', 'upstream_connecting', 'upstream_connected']);
    assert.equal(events.at(-1), 'closed');
  });
});
