/**
 * "A change to the wire format is done when a real dissector agrees": frames written by
 * libs/iketcp over a real TCP connection between two network namespaces, captured with tcpdump,
 * must all decode in tshark (with docs/wireshark/iketcp.lua) as IKE or ESP, with nothing
 * malformed, whatever the segment boundaries. The IKE messages are real ones from strongSwan.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeEspFrame, encodeIkeFrame, IKETCP_PREFIX } from '@ikegate/iketcp';
import { fromHex, requirement } from '@ikegate/testkit';
import { Capture, haveCaptureTools, tsharkFields } from './lib/capture.js';
import { canUseNetns, NetnsPair } from './lib/netns.js';

const netns = canUseNetns();
const skip = requirement(
  !netns.ok ? netns.why : !haveCaptureTools() ? 'tcpdump/tshark not installed' : false,
);

const vectors = JSON.parse(
  readFileSync(new URL('../vectors/strongswan-5.9.8-psk-x25519-aes256gcm.json', import.meta.url), 'utf8'),
) as Record<string, string>;

/** Runs a node script inside a namespace; resolves with its exit code (bounded by timeoutMs). */
function runIn(ns: string, script: string, env: Record<string, string>, timeoutMs = 20_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`script in ${ns} timed out`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code ?? -1);
    });
  });
}

// The peer scripts speak plain node:net; the bytes they write come from libs/iketcp (hex in env).
const SERVER = `
const net = require('node:net');
const srv = net.createServer((s) => {
  s.setNoDelay(true);
  let got = 0;
  s.on('data', (d) => { got += d.length; if (got >= Number(process.env.EXPECT)) {
    s.write(Buffer.from(process.env.REPLY, 'hex')); setTimeout(() => { s.end(); srv.close(); }, 200); } });
});
srv.listen(4500, process.env.ADDR);
setTimeout(() => process.exit(3), 15000).unref();
`;
const CLIENT = `
const net = require('node:net');
const pieces = process.env.PIECES.split(',').map((h) => Buffer.from(h, 'hex'));
const s = net.connect(4500, process.env.ADDR, async () => {
  s.setNoDelay(true);
  for (const p of pieces) { s.write(p); await new Promise((r) => setTimeout(r, 40)); }
});
s.on('data', () => {});
s.on('close', () => process.exit(0));
setTimeout(() => process.exit(4), 15000).unref();
`;

describe('tshark decodes libs/iketcp frames on a real TCP stream (RFC 9329 §3, §4)', { skip }, () => {
  const pair = new NetnsPair('ws', '10.97.0');
  const dir = mkdtempSync(join(tmpdir(), 'ikegate-ws-'));
  before(() => {
    pair.create();
  });
  after(() => pair.destroy());

  test('prefix and frames split across segments, several frames per segment, in both directions', async () => {
    const initReq = fromHex(vectors.ikeSaInitRequest ?? '');
    const initResp = fromHex(vectors.ikeSaInitResponse ?? '');
    const authReq = fromHex(vectors.ikeAuthRequest ?? '');
    const espPacket = new Uint8Array(120).fill(0xab);
    new DataView(espPacket.buffer).setUint32(0, 0xc0ffee01);
    new DataView(espPacket.buffer).setUint32(4, 1);
    const stream = Buffer.concat([
      IKETCP_PREFIX,
      encodeIkeFrame(initReq),
      encodeIkeFrame(authReq),
      encodeEspFrame(espPacket),
      encodeEspFrame(espPacket),
    ]);
    // boundaries: inside the prefix, inside the first Length field, mid-message, then two frames at once
    const cuts = [3, 7, 100, 6 + 6 + initReq.length + 40, stream.length];
    const pieces: string[] = [];
    let prev = 0;
    for (const c of cuts) {
      pieces.push(stream.subarray(prev, c).toString('hex'));
      prev = c;
    }
    const reply = Buffer.concat([encodeIkeFrame(initResp), encodeEspFrame(espPacket)]);
    const file = join(dir, 'tcp.pcap');
    const cap = new Capture(pair.nsA, pair.link.a, file, 'tcp port 4500');
    await cap.start();
    const server = runIn(pair.nsB, SERVER, {
      ADDR: pair.link.addrB,
      EXPECT: String(stream.length),
      REPLY: reply.toString('hex'),
    });
    await new Promise((r) => setTimeout(r, 300));
    const clientCode = await runIn(pair.nsA, CLIENT, { ADDR: pair.link.addrB, PIECES: pieces.join(',') });
    assert.equal(clientCode, 0);
    assert.equal(await server, 0);
    await cap.stop();

    const rows = tsharkFields(file, [
      'frame.number',
      'iketcp.kind',
      'isakmp.exchangetype',
      'isakmp.flags',
      'esp.spi',
      '_ws.malformed',
      '_ws.expert.severity',
    ]);
    const kinds = rows.flatMap((r) => (r[1] ? r[1].split(',') : []));
    assert.deepEqual(kinds, ['IKE', 'IKE', 'ESP', 'ESP', 'IKE', 'ESP'], JSON.stringify(rows));
    const exchanges = rows.flatMap((r) => (r[2] ? r[2].split(',') : []));
    assert.deepEqual(exchanges, ['34', '35', '34']);
    assert.ok(
      rows.every((r) => !r[5]),
      'no malformed packet',
    );
    const espSpis = rows.flatMap((r) => (r[4] ? r[4].split(',') : []));
    assert.deepEqual(espSpis, ['0xc0ffee01', '0xc0ffee01', '0xc0ffee01']);
  });
});
