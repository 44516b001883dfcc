/**
 * Schema errors in the words of `jotgate check`: `<key path>: <what is
 * wrong>`, saying what the value must be rather than what TypeBox expected.
 * A schema's own `errorMessage` wins.
 */
import { ValueErrorType, type ValueError } from '@sinclair/typebox/value'

export function describeSchemaError (error: ValueError): string {
  const schema = error.schema as { errorMessage?: string, minimum?: number, maximum?: number, minLength?: number, maxLength?: number, minItems?: number, pattern?: string }
  if (schema.errorMessage !== undefined) return schema.errorMessage
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties: return 'unknown key'
    case ValueErrorType.ObjectRequiredProperty: return 'is required'
    case ValueErrorType.Object: return 'must be a mapping'
    case ValueErrorType.Array: return 'must be a list'
    case ValueErrorType.String: return 'must be a string'
    case ValueErrorType.Boolean: return 'must be true or false'
    case ValueErrorType.Integer: return 'must be a whole number'
    case ValueErrorType.Number: return 'must be a number'
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum: return `must be at least ${schema.minimum}`
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum: return `must be at most ${schema.maximum}`
    case ValueErrorType.StringMinLength: return schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters`
    case ValueErrorType.StringMaxLength: return `must be at most ${schema.maxLength} characters`
    case ValueErrorType.ArrayMinItems: return schema.minItems === 1 ? 'must not be empty' : `must hold at least ${schema.minItems} items`
    case ValueErrorType.StringPattern: return `must match ${schema.pattern}`
    default: return error.message.charAt(0).toLowerCase() + error.message.slice(1)
  }
}
