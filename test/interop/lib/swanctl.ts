/**
 * What the strongSwan interop suites share: a swanctl.conf for one PSK tunnel (one setting per
 * line: semicolons are not separators in that format), and a ping through a tunnel from inside a
 * namespace that reports how many replies came back.
 */
import { ip } from './netns.js';

export interface PskTunnel {
  /** Connection name (default 'c'); the child is always 't'. */
  readonly name?: string;
  readonly local: string;
  /** Omitted on a responder that accepts any address. */
  readonly remote?: string;
  readonly localId: string;
  readonly remoteId: string;
  readonly localTs: string;
  readonly remoteTs: string;
  readonly psk: string;
  /** false: rekey_time = 0, so only the test triggers rekeys. */
  readonly autoRekey?: boolean;
}

export function pskSwanctlConf(t: PskTunnel): string {
  const noRekey = t.autoRekey === false;
  return `connections {
  ${t.name ?? 'c'} {
    local_addrs = ${t.local}
${t.remote ? `    remote_addrs = ${t.remote}\n` : ''}    proposals = aes256gcm16-prfsha256-x25519
${noRekey ? '    rekey_time = 0\n' : ''}    local {
      auth = psk
      id = ${t.localId}
    }
    remote {
      auth = psk
      id = ${t.remoteId}
    }
    children {
      t {
        esp_proposals = aes256gcm16
        mode = tunnel
        local_ts = ${t.localTs}
        remote_ts = ${t.remoteTs}
${noRekey ? '        rekey_time = 0\n' : ''}      }
    }
  }
}
secrets {
  ike-1 {
    secret = "${t.psk}"
    id-1 = ${t.localId}
    id-2 = ${t.remoteId}
  }
}
`;
}

/** Pings `dst` from `src` inside `netns` (200 ms apart, 2 s timeout each); returns replies received. */
export function pingThrough(netns: string, src: string, dst: string, count: number): number {
  let out: string;
  try {
    out = ip('netns', 'exec', netns, 'ping', '-c', String(count), '-i', '0.2', '-W', '2', '-I', src, dst);
  } catch (e) {
    out = String((e as { stdout?: string }).stdout);
  }
  return Number(/(\d+) received/.exec(out)?.[1] ?? 0);
}

/**
 * A strongSwan road warrior toward an ikegate gateway: asks for a virtual IP, forces UDP
 * encapsulation (userspace ikegate takes ESP in UDP only), PSK as carol@example.org, no automatic
 * rekeys (the tests trigger them).
 */
export function roadWarriorConf(o: {
  local: string;
  remote: string;
  hostNet: string;
  psk: string;
  remotePort?: number;
}): string {
  return `connections {
  rw {
    local_addrs = ${o.local}
    remote_addrs = ${o.remote}
${o.remotePort ? `    remote_port = ${o.remotePort}\n` : ''}    vips = 0.0.0.0
    encap = yes
    proposals = aes256gcm16-prfsha256-x25519
    rekey_time = 0
    local {
      auth = psk
      id = carol@example.org
    }
    remote {
      auth = psk
      id = gw.example.org
    }
    children {
      t {
        esp_proposals = aes256gcm16
        remote_ts = ${o.hostNet}
        rekey_time = 0
      }
    }
  }
}
secrets {
  ike-1 {
    secret = "${o.psk}"
    id-1 = carol@example.org
    id-2 = gw.example.org
  }
}
`;
}
