import fastJson from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify';
import { z } from 'zod';
import { $ZodType } from 'zod/v4/core';

/** Keywords that check values; a serialiser only needs the shape, and fast-json-stringify would run them. */
const VALUE_CHECKS = new Set(['pattern', 'format', 'minimum', 'maximum', 'minLength', 'maxLength']);

function shapeOnly(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(shapeOnly);
  if (typeof schema !== 'object' || schema === null) return schema;
  return Object.fromEntries(
    Object.entries(schema)
      .filter(([key]) => !VALUE_CHECKS.has(key))
      .map(([key, value]) => [key, key === 'properties' ? mapValues(value, shapeOnly) : shapeOnly(value)]),
  );
}

/** `properties` holds names, not keywords: a property called "format" must stay. */
function mapValues(
  object: Record<string, unknown>,
  map: (value: unknown) => unknown,
): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).map(([key, value]) => [key, map(value)]));
}

/**
 * Serialises responses with fast-json-stringify, compiled once per route and status from
 * the route's zod response schema (its JSON Schema, as the OpenAPI document shows it). The
 * responses are our own objects: what the edge checks is what comes in, so there is no zod
 * pass per response. Fields outside the schema are left out (as zod's parse stripped them);
 * a required field that is missing still fails the response.
 */
export const responseSerializerCompiler: FastifySerializerCompiler<unknown> = ({ schema }) => {
  const zodSchema = schema instanceof $ZodType ? schema : (schema as { properties?: unknown }).properties;
  if (!(zodSchema instanceof $ZodType)) {
    throw new Error(`a response schema must be a zod schema, got ${JSON.stringify(schema)}`);
  }
  const jsonSchema = z.toJSONSchema(zodSchema, { target: 'draft-7', io: 'output' });
  return fastJson(shapeOnly(jsonSchema) as Parameters<typeof fastJson>[0]);
};
