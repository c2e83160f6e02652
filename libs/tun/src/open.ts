/**
 * Getting TUN file descriptors into a Node process without a native addon.
 *
 * Node has no ioctl(), so TUNSETIFF cannot be issued from JavaScript. Instead the process re-executes
 * itself through a tiny python3 program (TUN_OPENER_PY) that opens /dev/net/tun once per name, issues
 * TUNSETIFF (IFF_TUN | IFF_NO_PI, and IFF_VNET_HDR where the kernel has it: see gro.ts), marks the
 * descriptors inheritable, records them in IKEGATE_TUN_FDS (and in IKEGATE_TUN_VNET_HDR_DEVICES
 * those with the header) and execs the original node command line. The re-executed node finds the
 * variable set and gets the descriptor map; the original process stays as a thin parent that
 * forwards signals and exits with the child's code.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { constants as osConstants } from 'node:os';

/** Environment variable carrying `name=fd,name=fd` into the re-executed process. */
export const TUN_FDS_ENV = 'IKEGATE_TUN_FDS';
/** Environment variable carrying `name=fd` of each device's waker (see TunDevice.close). */
export const TUN_WAKE_FDS_ENV = 'IKEGATE_TUN_WAKE_FDS';
/** Environment variable naming the devices opened with IFF_VNET_HDR (`name,name`; see gro.ts). */
export const TUN_VNET_HDR_ENV = 'IKEGATE_TUN_VNET_HDR_DEVICES';
/**
 * Set to `0` to open TUN devices without IFF_VNET_HDR (no merged writes, gro.ts): for a kernel or
 * sandbox whose TUN mishandles GSO writes. Without it a kernel that lacks the flag
 * (TUNGETFEATURES) gets plain devices as well.
 */
export const TUN_VNET_HDR_SWITCH_ENV = 'IKEGATE_TUN_VNET_HDR';
/** Environment variable telling the opener which inherited fd to report failures on (fd 3). */
const STATUS_FD_ENV = 'IKEGATE_TUN_STATUS_FD';

export type TunUnavailableReason =
  /** An interface name is empty, longer than 15 bytes or contains '/', ':', ',', '=' or whitespace. */
  | 'bad-name'
  /** /dev/net/tun does not exist, or the tun driver is not loaded. */
  | 'no-dev-net-tun'
  /** Not root and no CAP_NET_ADMIN: opening /dev/net/tun or TUNSETIFF was refused. */
  | 'not-permitted'
  /** The named TUN device is already attached to another open file (or the name was listed twice). */
  | 'device-busy'
  /** The name belongs to an existing interface that is not a TUN device. */
  | 'name-conflict'
  /** Any other open/ioctl failure. */
  | 'tun-open-failed'
  /** The python3 interpreter could not be started. */
  | 'python3-missing'
  /** The opener could not exec the node command line. */
  | 'exec-failed'
  /** IKEGATE_TUN_FDS is malformed or lacks one of the requested names. */
  | 'bad-env'
  /** The opener failed in an unexpected way (a bug). */
  | 'internal';

export class TunUnavailableError extends Error {
  override readonly name = 'TunUnavailableError';
  constructor(
    readonly reason: TunUnavailableReason,
    message: string,
    /** The opener's exit code when the failure came from the python3 opener. */
    readonly exitCode?: number,
  ) {
    super(message);
  }
}

/**
 * Exit codes of the opener (sysexits-style). Keep in sync with EXIT_CODES in TUN_OPENER_PY.
 */
export const OPENER_EXIT_CODES: Readonly<Record<string, number>> = {
  'bad-name': 64,
  internal: 70,
  'tun-open-failed': 71,
  'no-dev-net-tun': 72,
  'exec-failed': 73,
  'device-busy': 75,
  'name-conflict': 76,
  'not-permitted': 77,
};

/**
 * The python3 opener. argv: [json array of names, command, ...args]. On failure it exits with one of
 * OPENER_EXIT_CODES; the message goes to the status fd named by IKEGATE_TUN_STATUS_FD as one JSON line
 * `{"reason","message"}` when that is set (reexecWithTun reads it and throws TunUnavailableError),
 * otherwise to stderr as `ikegate-tun: <message>`. The status fd is close-on-exec, so a successful
 * exec shows up in the parent as EOF with no data.
 */
export const TUN_OPENER_PY = String.raw`
import errno, fcntl, json, os, socket, struct, sys

TUNSETIFF = 0x400454CA
TUNGETFEATURES = 0x800454CF
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
VNET_HDR_LEN = 10
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
EXIT_CODES = {
    'bad-name': 64, 'internal': 70, 'tun-open-failed': 71, 'no-dev-net-tun': 72,
    'exec-failed': 73, 'device-busy': 75, 'name-conflict': 76, 'not-permitted': 77,
}
PERM_HINT = 'run as root or grant CAP_NET_ADMIN (e.g. setcap, or a container with --cap-add NET_ADMIN)'
DEV_HINT = 'load the driver with "modprobe tun"; in a container pass --device /dev/net/tun'

status_fd = -1
try:
    status_fd = int(os.environ.pop('IKEGATE_TUN_STATUS_FD', '-1'))
    if status_fd >= 0:
        os.set_inheritable(status_fd, False)
except (ValueError, OSError):
    status_fd = -1

def fail(reason, message):
    if status_fd >= 0:
        try:
            os.write(status_fd, (json.dumps({'reason': reason, 'message': message}) + '\n').encode())
        except OSError:
            sys.stderr.write('ikegate-tun: ' + message + '\n')
    else:
        sys.stderr.write('ikegate-tun: ' + message + '\n')
    sys.stderr.flush()
    os._exit(EXIT_CODES[reason])

def check_name(name):
    if not isinstance(name, str) or name == '':
        fail('bad-name', 'interface name must be a non-empty string, got %r' % (name,))
    raw = name.encode('utf-8')
    if len(raw) > 15:
        fail('bad-name', 'interface name %r is %d bytes, longer than 15 (IFNAMSIZ - 1)' % (name, len(raw)))
    if name in ('.', '..') or any(c in name for c in '/:,=') or any(c.isspace() for c in name):
        fail('bad-name', "interface name %r contains a character not allowed in names (/ : , = or whitespace)" % (name,))
    return raw

def vnet_hdr_supported(fd):
    # Our header is written little-endian (gro.ts): on a big-endian host, go without.
    if os.environ.get('IKEGATE_TUN_VNET_HDR', '1') == '0' or sys.byteorder != 'little':
        return False
    try:
        features = struct.unpack('I', fcntl.ioctl(fd, TUNGETFEATURES, struct.pack('I', 0)))[0]
    except OSError:
        return False
    return (features & IFF_VNET_HDR) != 0

def vnet_hdr_settle(fd):
    # A persistent device keeps the header size and offloads an earlier user set: ours are a
    # 10-octet header and no offloads (the kernel then checksums and segments what it sends us).
    try:
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack('i', VNET_HDR_LEN))
        fcntl.ioctl(fd, TUNSETOFFLOAD, 0)
        return True
    except OSError:
        return False

def open_tun(name, raw, vnet_wanted=True):
    try:
        fd = os.open('/dev/net/tun', os.O_RDWR)
    except OSError as e:
        if e.errno == errno.ENOENT:
            fail('no-dev-net-tun', '/dev/net/tun does not exist; ' + DEV_HINT)
        if e.errno in (errno.ENODEV, errno.ENXIO):
            fail('no-dev-net-tun', 'cannot open /dev/net/tun: %s (tun driver not loaded?); %s' % (e.strerror, DEV_HINT))
        if e.errno in (errno.EACCES, errno.EPERM):
            fail('not-permitted', 'cannot open /dev/net/tun: %s; %s' % (e.strerror, PERM_HINT))
        fail('tun-open-failed', 'cannot open /dev/net/tun: %s' % (e.strerror,))
    vnet = vnet_wanted and vnet_hdr_supported(fd)
    ifr = struct.pack('16sH22x', raw, IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if vnet else 0))
    try:
        fcntl.ioctl(fd, TUNSETIFF, ifr)
    except OSError as e:
        if vnet and e.errno == errno.EINVAL:
            # A TUN that lists IFF_VNET_HDR and refuses it: a plain device, then.
            os.close(fd)
            return open_tun(name, raw, False)
        if e.errno in (errno.EPERM, errno.EACCES):
            fail('not-permitted', 'TUNSETIFF %s: %s; %s' % (name, e.strerror, PERM_HINT))
        if e.errno == errno.EBUSY:
            fail('device-busy', 'TUN device %s is busy: it is already attached to another open file (another process, or the name listed twice)' % (name,))
        if e.errno == errno.EINVAL:
            fail('name-conflict', 'TUNSETIFF %s: %s (an interface with this name exists and is not a TUN device?)' % (name, e.strerror))
        fail('tun-open-failed', 'TUNSETIFF %s: %s' % (name, e.strerror))
    if vnet and not vnet_hdr_settle(fd):
        os.close(fd)
        return open_tun(name, raw, False)
    os.set_inheritable(fd, True)
    return fd, vnet

def open_waker(name):
    # A packet socket bound to the device with protocol 0 receives nothing, but a write() on it is
    # transmitted through the device, i.e. handed to the TUN reader: TunDevice.close() uses it to wake
    # a read blocked in the kernel. Optional: on failure the device simply has no waker.
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
        s.bind((name, 0))
        wfd = s.detach()
        os.set_inheritable(wfd, True)
        return wfd
    except OSError:
        return -1

def main():
    if len(sys.argv) < 3:
        fail('internal', 'usage: python3 -c <opener> <json names> <command> [args...]')
    try:
        names = json.loads(sys.argv[1])
    except ValueError:
        fail('bad-name', 'first argument must be a JSON array of interface names')
    if not isinstance(names, list) or len(names) == 0:
        fail('bad-name', 'first argument must be a non-empty JSON array of interface names')
    raws = [check_name(n) for n in names]
    if not os.path.exists('/dev/net/tun'):
        fail('no-dev-net-tun', '/dev/net/tun does not exist; ' + DEV_HINT)
    pairs = []
    wakers = []
    vnets = []
    for name, raw in zip(names, raws):
        fd, vnet = open_tun(name, raw)
        pairs.append('%s=%d' % (name, fd))
        if vnet:
            vnets.append(name)
        wfd = open_waker(name)
        if wfd >= 0:
            wakers.append('%s=%d' % (name, wfd))
    os.environ['IKEGATE_TUN_FDS'] = ','.join(pairs)
    os.environ['IKEGATE_TUN_WAKE_FDS'] = ','.join(wakers)
    os.environ['IKEGATE_TUN_VNET_HDR_DEVICES'] = ','.join(vnets)
    cmd = sys.argv[2:]
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        fail('exec-failed', 'cannot exec %s: %s' % (cmd[0], e.strerror))

try:
    main()
except SystemExit:
    raise
except BaseException as e:
    fail('internal', 'opener crashed: %r' % (e,))
`;

/**
 * Parses `name=fd,name=fd` from IKEGATE_TUN_FDS. Unset or empty gives an empty map; a malformed value
 * throws TunUnavailableError('bad-env').
 */
export function tunFdsFromEnv(env: NodeJS.ProcessEnv = process.env): Map<string, number> {
  return parseFdList(env, TUN_FDS_ENV);
}

/** Parses IKEGATE_TUN_WAKE_FDS (same format): each device's waker fd, if the opener could make one. */
export function tunWakeFdsFromEnv(env: NodeJS.ProcessEnv = process.env): Map<string, number> {
  return parseFdList(env, TUN_WAKE_FDS_ENV);
}

function parseFdList(env: NodeJS.ProcessEnv, key: string): Map<string, number> {
  const raw = env[key];
  const out = new Map<string, number>();
  if (raw === undefined || raw === '') return out;
  for (const part of raw.split(',')) {
    const eq = part.lastIndexOf('=');
    const name = part.slice(0, eq);
    const fdText = part.slice(eq + 1);
    if (eq <= 0 || !/^\d+$/.test(fdText) || out.has(name)) {
      throw new TunUnavailableError('bad-env', `${key} is malformed at ${JSON.stringify(part)}`);
    }
    out.set(name, Number(fdText));
  }
  return out;
}

export interface ReexecOptions {
  /** Interpreter to run the opener with. Default 'python3' (looked up on PATH). */
  python?: string;
  /** Command the opener execs. Default: this node process's own command line. */
  command?: readonly string[];
  /** Environment to read IKEGATE_TUN_FDS from and to pass on. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** In the parent, call process.exit(child's code) when the child exits. Default true. */
  exitWithChild?: boolean;
  /** Variables set for the child only, over `env` (e.g. LD_PRELOAD of an allocator). */
  childEnv?: Readonly<Record<string, string>>;
}

export type ReexecResult =
  /**
   * This process holds the TUN devices: `fds` maps each requested name to its descriptor, `wakeFds`
   * to its waker (pass both to TunDevice.fromFd; a name may lack a waker).
   */
  | {
      role: 'child';
      fds: Map<string, number>;
      wakeFds: Map<string, number>;
      /** The devices opened with IFF_VNET_HDR (TunDevice.fromReexec passes this on). */
      vnetHdr: Set<string>;
    }
  /**
   * This process is only the launcher: stop doing work. `exited` resolves with the child's exit code
   * (128 + signal number when it died of a signal); unless exitWithChild is false the parent then exits.
   */
  | { role: 'parent'; pid: number; exited: Promise<number> };

const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Makes sure this process holds TUN devices named `names`.
 *
 * If IKEGATE_TUN_FDS is set (we are the re-executed child) returns `{role: 'child', fds}` and removes
 * the variable from `env`, so processes this one spawns do not mistake themselves for re-executed
 * children. Otherwise runs the python3 opener, which execs this same node command line with the
 * descriptors inherited; resolves `{role: 'parent'}` once that exec succeeded, and rejects with
 * TunUnavailableError (naming what is missing) when it did not.
 */
export async function reexecWithTun(
  names: readonly string[],
  opts: ReexecOptions = {},
): Promise<ReexecResult> {
  const env = opts.env ?? process.env;
  if (env[TUN_FDS_ENV] !== undefined) {
    const fds = tunFdsFromEnv(env);
    const missing = names.filter((n) => !fds.has(n));
    if (missing.length > 0) {
      throw new TunUnavailableError(
        'bad-env',
        `${TUN_FDS_ENV}=${env[TUN_FDS_ENV]} has no descriptor for ${missing.join(', ')}`,
      );
    }
    const wakeFds = tunWakeFdsFromEnv(env);
    const vnetHdr = new Set((env[TUN_VNET_HDR_ENV] ?? '').split(',').filter((n) => n !== ''));
    delete env[TUN_FDS_ENV];
    delete env[TUN_WAKE_FDS_ENV];
    delete env[TUN_VNET_HDR_ENV];
    return { role: 'child', fds, wakeFds, vnetHdr };
  }

  const python = opts.python ?? 'python3';
  const command = opts.command ?? [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const child = spawn(python, ['-c', TUN_OPENER_PY, JSON.stringify(names), ...command], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env: { ...env, ...opts.childEnv, [STATUS_FD_ENV]: '3' },
  });

  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0));
    });
  });

  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT' || err.code === 'EACCES'
          ? new TunUnavailableError(
              'python3-missing',
              `cannot run ${python} (${err.code}): @ikegate/tun needs python3 on PATH to open /dev/net/tun`,
            )
          : new TunUnavailableError('python3-missing', `cannot run ${python}: ${err.message}`),
      );
    });
  });

  const status = child.stdio[3] as Readable | null | undefined;
  const report = await new Promise<string>((resolve) => {
    if (!status) {
      resolve('');
      return;
    }
    let text = '';
    status.on('data', (chunk: string | Buffer) => (text += chunk.toString()));
    status.once('close', () => resolve(text));
    status.once('error', () => resolve(text));
  });

  if (report.trim() !== '') {
    const code = await exited;
    let reason: TunUnavailableReason = 'internal';
    let message = report.trim();
    try {
      const parsed = JSON.parse(report) as { reason?: string; message?: string };
      if (typeof parsed.reason === 'string') reason = parsed.reason as TunUnavailableReason;
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      // not JSON: keep the raw text as the message
    }
    throw new TunUnavailableError(reason, message, code);
  }

  // Exec succeeded: we are the launcher. Forward termination signals and follow the child's fate.
  const forward = (sig: NodeJS.Signals): void => {
    child.kill(sig);
  };
  for (const sig of FORWARDED_SIGNALS) process.on(sig, forward);
  void exited.then((code) => {
    for (const sig of FORWARDED_SIGNALS) process.off(sig, forward);
    if (opts.exitWithChild !== false) process.exit(code);
  });
  return { role: 'parent', pid: child.pid!, exited };
}
