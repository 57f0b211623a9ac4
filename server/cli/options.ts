// Option parsers shared by the `moslora` CLI and `npm run bench`.
import { InvalidArgumentError } from 'commander';
import { BACKEND_PREFERENCES, type BackendPreference } from '../../protocol/backends';

export function integer(name: string, min: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got "${value}"`);
    return parsed;
  };
}

export function backendOption(value: string): BackendPreference {
  if (!(BACKEND_PREFERENCES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`allowed: ${BACKEND_PREFERENCES.join(', ')}`);
  }
  return value as BackendPreference;
}

export function numberList(value: string): number[] {
  const numbers = value.split(',').map((part) => Number(part.trim()));
  if (numbers.some((n) => !Number.isFinite(n))) throw new InvalidArgumentError(`expected comma-separated numbers, got "${value}"`);
  return numbers;
}
