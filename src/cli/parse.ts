/**
 * Argument parsers for commander options: each turns a string into a checked value or throws
 * commander's InvalidArgumentError, which commander reports as a usage error naming the option.
 */
import { InvalidArgumentError } from 'commander';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || value.trim() === '') throw new InvalidArgumentError('expected a positive integer.');
  return n;
}

export function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || value.trim() === '') throw new InvalidArgumentError('expected an integer.');
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || value.trim() === '') throw new InvalidArgumentError('expected a number above 0.');
  return n;
}

/** A probability mass for top-p: 0 < p ≤ 1. */
export function probability(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1) || value.trim() === '') throw new InvalidArgumentError('expected a number in (0, 1].');
  return n;
}

/** For repeatable options (`--stop a --stop b`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
