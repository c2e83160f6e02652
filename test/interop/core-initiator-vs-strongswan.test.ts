/**
 * The protocol core as initiator against a real strongSwan 5.9.8 responder (userspace ESP) across
 * two network namespaces over UDP: IKE_SA_INIT + IKE_AUTH with PSK, pings sent through the tunnel
 * and answered by strongSwan's host, then a child SA rekey, an IKE SA rekey and a DELETE that we
 * initiate (RFC 7296 §1.3.2, §1.3.3, §2.8, §1.4.1), with traffic after each.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { canUseNetns, NetnsPair } from './lib/netns.js';
import { Charon, haveStrongswan } from './lib/strongswan.js';
import { pskSwanctlConf } from './lib/swanctl.js';

const netns = canUseNetns();
const skip = requirement(
  !netns.ok ? netns.why : !haveStrongswan() ? 'strongSwan (charon, swanctl) not installed' : false,
);
const PSK = 'interop-psk-8a1d3e5f20';

describe(
  'ikegate protocol core initiator -> strongSwan responder over UDP (RFC 7296, RFC 4303, RFC 3948)',
  { skip },
  () => {
    const pair = new NetnsPair('cini', '10.95.0');
    let charon: Charon;
    before(async () => {
      pair.create({ loA: ['10.1.0.1/32'] });
      charon = new Charon({
        netns: pair.nsA,
        swanctlConf: pskSwanctlConf({
          name: 'r',
          local: pair.link.addrA,
          localId: 'b.example',
          remoteId: 'a.example',
          localTs: '10.1.0.1/32',
          remoteTs: '10.2.0.1/32',
          psk: PSK,
        }),
        log: { ike: 2, cfg: 1 },
      });
      await charon.start();
    });
    after(async () => {
      await charon?.stop();
      pair.destroy();
    });

    test('set up, pings, child rekey, IKE rekey and delete, all initiated by ikegate, are accepted by strongSwan', async () => {
      const events: { event: string; [k: string]: unknown }[] = [];
      const code = await new Promise<number>((resolve) => {
        const p = spawn(
          'ip',
          [
            'netns',
            'exec',
            pair.nsB,
            process.execPath,
            '--import',
            'tsx',
            new URL('./core-initiator.ts', import.meta.url).pathname,
          ],
          {
            env: {
              ...process.env,
              IKEGATE_REMOTE: pair.link.addrA,
              IKEGATE_INTEROP: JSON.stringify({
                local: pair.link.addrB,
                psk: PSK,
                localId: 'a.example',
                localTs: '10.2.0.1/32',
                remoteTs: '10.1.0.1/32',
                localInner: '10.2.0.1',
                remoteInner: '10.1.0.1',
              }),
              IKEGATE_INTEROP_LIFETIME_MS: '60000',
            },
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        let buf = '';
        p.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const lines = buf.split('\n');
          buf = lines.pop() ?? '';
          for (const l of lines) if (l) events.push(JSON.parse(l) as { event: string });
        });
        const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
        p.on('exit', (c) => {
          clearTimeout(timer);
          resolve(c ?? -1);
        });
      });
      const names = events.map((e) => e.event);
      assert.ok(names.includes('done'), `${JSON.stringify(events)}\n${charon.log().slice(-4000)}`);
      assert.equal(code, 0);
      assert.equal(names.filter((n) => n === 'pong').length, 7);
      assert.equal(names.filter((n) => n === 'install-child').length, 2);
      assert.ok(names.includes('rekeyed-ike'));
      assert.ok(!names.includes('error'));
      const log = charon.log();
      assert.match(log, /IKE_SA r\[\d+\] established/);
      assert.match(log, /CHILD_SA t\{\d+\} established/);
      assert.match(log, /rekeyed/i);
    });
  },
);
