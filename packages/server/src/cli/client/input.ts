/**
 * JSON arguments on the command line: `--input '{"a":1}'`, `--input @file.json`
 * or `--input -` (stdin). A value that is not JSON is a usage error (exit 2)
 * naming the flag, never sent to the server as a string by accident.
 */
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { InvalidArgumentError } from 'commander';
import { UsageError } from './exitCodes.js';

/** Most bytes read from a file or stdin for one argument (the server's body limit is smaller anyway). */
const JSON_ARGUMENT_MAX_BYTES = 64 * 1024 * 1024;

export async function readJsonArgument(flag: string, value: string, stdin: NodeJS.ReadableStream = process.stdin): Promise<unknown> {
  let source: string;
  let where: string;
  if (value === '-') {
    source = await text(stdin);
    where = 'stdin';
  } else if (value.startsWith('@')) {
    const path = value.slice(1);
    try {
      source = await readFile(path, 'utf8');
    } catch (err) {
      throw new UsageError(`${flag}: cannot read ${path}: ${(err as Error).message}`);
    }
    where = path;
  } else {
    source = value;
    where = 'the argument';
  }
  if (source.length > JSON_ARGUMENT_MAX_BYTES) throw new UsageError(`${flag}: ${where} is larger than ${JSON_ARGUMENT_MAX_BYTES} bytes`);
  try {
    return JSON.parse(source) as unknown;
  } catch (err) {
    throw new UsageError(
      `${flag}: ${where} is not valid JSON (${(err as Error).message}); pass JSON ('{"text":"hi"}'), @file.json, or - for stdin`,
    );
  }
}

/** A commander argument parser for a whole number in [min, max] (commander reports the mistake; exit 2). */
export function countParser(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^\d{1,9}$/.test(value.trim()) ? Number(value.trim()) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
    return n;
  };
}

/** A commander argument parser for seconds (decimals allowed), giving milliseconds. */
export function secondsParser(value: string): number {
  const n = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isFinite(n) || n <= 0 || n > 31_536_000) throw new InvalidArgumentError('must be a number of seconds above 0.');
  return Math.round(n * 1000);
}
