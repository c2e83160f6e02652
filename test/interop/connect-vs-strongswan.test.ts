/**
 * Issue #4: ikegate as initiator — `ikegate connect` (its TUN, CFG_REQUEST for a virtual IP) to a
 * real strongSwan responder (charon, kernel-libipsec, a swanctl address pool) over UDP 500/4500
 * (RFC 7296 §2.23 NAT-T encapsulation, RFC 3948). Ping and a TCP transfer with SHA-256 to an
 * address behind strongSwan, then DELETE from the client when it stops.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { canUseNetns } from './lib/netns.js';
import { IkegateProcess } from './lib/ikegate-process.js';
import { Charon, haveStrongswan } from './lib/strongswan.js';
import { pingThrough } from './lib/swanctl.js';
import { Chain3 } from './lib/topology.js';
import { Sink, transfer } from './lib/transfer.js';

const netns = canUseNetns();
const skip = requirement(
  !netns.ok ? netns.why : !haveStrongswan() ? 'strongSwan (charon, swanctl) not installed' : false,
);
const PSK = 'connect-to-strongswan-psk-71c0e4';

function responderConf(local: string, hostNet: string): string {
  return `connections {
  gw {
    local_addrs = ${local}
    pools = rw
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = psk
      id = gw.example.org
    }
    remote {
      auth = psk
      id = carol@example.org
    }
    children {
      t {
        esp_proposals = aes256gcm16
        local_ts = ${hostNet}
      }
    }
  }
}
pools {
  rw {
    addrs = 10.85.100.0/24
  }
}
secrets {
  ike-1 {
    secret = "${PSK}"
    id-1 = gw.example.org
    id-2 = carol@example.org
  }
}
`;
}

describe(
  '`ikegate connect` (initiator) -> strongSwan responder over UDP: VIP from its pool, traffic, DELETE (issue #4)',
  { skip },
  () => {
    const net = new Chain3('cs', '10.85');
    const client = new IkegateProcess(net.client);
    const sink = new Sink();
    let charon: Charon;

    before(async () => {
      net.create();
      charon = new Charon({
        netns: net.gateway,
        swanctlConf: responderConf(net.gatewayOuter, '10.85.2.0/24'),
      });
      await charon.start();
      await sink.start(net.gateway, net.gatewayInner, 5003);
    });

    after(async () => {
      if (process.env.IKEGATE_INTEROP_DEBUG)
        console.error(JSON.stringify(client.lines.slice(-30)), charon?.log().slice(-4000));
      await client.stop();
      sink.stop();
      await charon?.stop();
      net.destroy();
    });

    test('IKE SA + CHILD SA with PSK; the virtual IP from strongSwan lands on our TUN (RFC 7296 §1.2, §3.15)', async () => {
      client.start([
        'connect',
        '--server',
        net.gatewayOuter,
        '--transport',
        'udp',
        '--id',
        'carol@example.org',
        '--remote-id',
        'gw.example.org',
        '--psk',
        PSK,
        '--ts',
        '10.85.2.0/24',
        '--tun',
        'ikgc1',
      ]);
      const t = await client.waitFor('tun-configured', { timeoutMs: 20_000 });
      assert.match(String(t.virtualIp), /^10\.85\.100\.\d+$/);
      assert.match(charon.swanctl('--list-sas'), /ESTABLISHED/);
    });

    test('ping and a 4 MB TCP transfer (SHA-256) reach the responder side through the tunnel', async () => {
      const vip = String((await client.waitFor('tun-configured')).virtualIp);
      assert.equal(pingThrough(net.client, vip, net.gatewayInner, 3), 3, charon.log().slice(-2000));
      const r = await transfer(net.client, vip, net.gatewayInner, 5003, 4 * 1024 * 1024);
      assert.equal(r.error, undefined, JSON.stringify(r));
      assert.equal(r.reply.sha256, r.sha256);
    });

    test('child rekey started by strongSwan is answered by the client; traffic continues (RFC 7296 §1.3.3)', async () => {
      const n = client.count('child-sa-installed');
      assert.match(charon.swanctl('--rekey', '--child', 't'), /rekey completed successfully/);
      await client.waitFor('child-sa-installed', { n: n + 1 });
      const vip = String((await client.waitFor('tun-configured')).virtualIp);
      assert.equal(pingThrough(net.client, vip, net.gatewayInner, 2), 2);
    });

    test('stopping the client sends DELETE and strongSwan drops the SA (RFC 7296 §1.4.1)', async () => {
      await client.stop();
      const until = Date.now() + 10_000;
      while (/ESTABLISHED/.test(charon.swanctl('--list-sas')) && Date.now() < until)
        await new Promise((r) => setTimeout(r, 100));
      assert.doesNotMatch(charon.swanctl('--list-sas'), /ESTABLISHED/);
    });
  },
);
