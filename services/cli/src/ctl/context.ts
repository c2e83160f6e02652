/**
 * What a `ctl` command runs with, and how the command table is declared. A command is data: the
 * words that name it, its positional arguments, the options it takes beyond the connection's, and
 * a `run` that talks to the API through `ctx.api()` and prints through `ctx.out` / `ctx.err`.
 * ctl.ts parses, picks the command, and turns what `run` throws into an exit status.
 */
import type { ApiClient } from './client.js';

/** Where a run writes and what it reads of its environment; tests pass strings in and out. */
export interface CtlIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env: NodeJS.ProcessEnv;
  /** ms since the epoch; default Date.now (for "established 5m ago"). */
  readonly now?: () => number;
}

/** parseArgs values: strings for options with a value, booleans for flags. */
export type Values = Readonly<Record<string, string | boolean | undefined>>;

export interface Ctx {
  /** --json: print the API's JSON instead of tables. */
  readonly json: boolean;
  /** Text for stdout (scrubbed of secrets). */
  out(text: string): void;
  /** Text for stderr (scrubbed of secrets). */
  err(text: string): void;
  /** `value` as indented JSON on stdout. */
  printJson(value: unknown): void;
  /** The API client, made on first use from the connection flags. */
  api(): ApiClient;
  /** Which credential is sent, for 401/403 messages. */
  credentials(): string;
  /** Values never to print (a PSK read from a file); adding one scrubs it from later output. */
  addSecret(secret: string): void;
  now(): number;
}

export interface CtlCommand {
  /** The words after `ctl`: `['sa', 'delete']`. The first is the command's help group. */
  readonly words: readonly string[];
  /** Positional arguments after the words, by the names the usage shows: `['SPI']`. */
  readonly args: readonly string[];
  /** Options beyond --json and the connection's. */
  readonly options?: readonly string[];
  /** Runs without the API: takes neither connection options nor --json. */
  readonly offline?: boolean;
  /** Resolves with the exit status (default 0); throws the ctl errors (errors.ts) otherwise. */
  run(ctx: Ctx, args: readonly string[], values: Values): Promise<number | void>;
}

/** A string option's value (parseArgs typed them all as string | boolean). */
export function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}
