/**
 * CDS Hooks 2.0 as zod schemas, written from the specification's tables (optionality, types, fixed values and the
 * "no null, no empty" rule for optional fields). Requests from CDS Clients are parsed leniently where the
 * specification allows additions (unknown fields are kept); what this service sends is parsed strictly, so a
 * response can only carry what the specification defines (plus `extension`).
 * @see https://cds-hooks.hl7.org/2.0/
 */
import { z } from 'zod';

/** A required string: the specification forbids `""` for every field unless it says otherwise. */
const text = z.string().min(1);
/** An absolute URL (the specification's *URL* type). */
const url = z.url();
/** `extension`: reserved by the specification for implementation-defined JSON objects. */
const extension = z.record(z.string(), z.unknown()).optional();
/** A FHIR resource, checked only for `resourceType` (the FHIR server is the place to validate FHIR). */
const fhirResource = z.looseObject({ resourceType: text });

/** Coding (§ Data Types): `code` and `system` required, `display` conditional. */
export const codingSchema = z.looseObject({ code: text, system: text, display: text.optional() });
/** A Coding with its `display`, as override reasons given by a service must have. */
export const displayedCodingSchema = codingSchema.extend({ display: text });

// ---------------------------------------------------------------- Discovery

/** One CDS Service in the discovery response (§ Discovery). */
export const cdsServiceSchema = z.strictObject({
  hook: text,
  title: text.optional(),
  description: text,
  id: text,
  prefetch: z.record(text, text).optional(),
  usageRequirements: text.optional(),
  extension,
});
/** One CDS Service. */
export type CdsService = z.infer<typeof cdsServiceSchema>;

/** `GET {baseUrl}/cds-services` (§ Discovery; an empty array when there are no services). */
export const discoveryResponseSchema = z.strictObject({ services: z.array(cdsServiceSchema), extension });
/** The discovery response. */
export type DiscoveryResponse = z.infer<typeof discoveryResponseSchema>;

// ---------------------------------------------------------------- Request

/** `fhirAuthorization` (§ Passing the Access Token to the CDS Service). */
export const fhirAuthorizationSchema = z.looseObject({
  access_token: text,
  token_type: z.literal('Bearer'),
  expires_in: z.number().int().nonnegative(),
  scope: text,
  subject: text,
  patient: text.optional(),
});
/** The access token a CDS Client hands the service for its FHIR server. */
export type FhirAuthorization = z.infer<typeof fhirAuthorizationSchema>;

/**
 * A hook call (§ Calling a CDS Service). `fhirServer` is required with `fhirAuthorization`. A prefetch value is a
 * resource, a Bundle, an OperationOutcome, or `null` when the client had no data for the template.
 */
export const hookRequestSchema = z
  .looseObject({
    hook: text,
    hookInstance: text,
    fhirServer: url.optional(),
    fhirAuthorization: fhirAuthorizationSchema.optional(),
    context: z.looseObject({}),
    prefetch: z.record(z.string(), z.union([fhirResource, z.null(), z.string()])).optional(),
    extension,
  })
  .refine((request) => !request.fhirAuthorization || request.fhirServer !== undefined, {
    message: 'fhirServer is required when fhirAuthorization is present',
    path: ['fhirServer'],
  });
/** A hook call. */
export type HookRequest = z.infer<typeof hookRequestSchema>;

/** A user reference `ResourceType/id` as hooks define `userId`. */
const userReference = (types: readonly string[]) =>
  z.string().regex(new RegExp(`^(${types.join('|')})/[A-Za-z0-9\\-.]{1,64}$`), `a reference to ${types.join(', ')}`);

/** `patient-view` context (hookVersion 1.0). */
export const patientViewContextSchema = z.looseObject({
  userId: userReference(['Practitioner', 'PractitionerRole', 'Patient', 'RelatedPerson']),
  patientId: text,
  encounterId: text.optional(),
});

/** The draft orders of an ordering session: a Bundle of request resources. */
const draftOrdersSchema = z.looseObject({
  resourceType: z.literal('Bundle'),
  entry: z.array(z.looseObject({ resource: fhirResource.optional() })).optional(),
});

/** `order-select` context (hookVersion 1.0): `selections` name orders in `draftOrders`. */
export const orderSelectContextSchema = z.looseObject({
  userId: userReference(['Practitioner', 'PractitionerRole']),
  patientId: text,
  encounterId: text.optional(),
  selections: z.array(text).min(1),
  draftOrders: draftOrdersSchema,
});

/** `order-sign` context (hookVersion 1.0). */
export const orderSignContextSchema = z.looseObject({
  userId: userReference(['Practitioner', 'PractitionerRole']),
  patientId: text,
  encounterId: text.optional(),
  draftOrders: draftOrdersSchema,
});

/** The context schema of each hook this service answers. */
export const hookContextSchemas = {
  'patient-view': patientViewContextSchema,
  'order-select': orderSelectContextSchema,
  'order-sign': orderSignContextSchema,
} as const;
/** A hook this service answers. */
export type SupportedHook = keyof typeof hookContextSchemas;

// ---------------------------------------------------------------- Response

/** Action (§ Action): `resource` for create and update, `resourceId` for delete. */
export const actionSchema = z
  .strictObject({
    type: z.enum(['create', 'update', 'delete']),
    description: text,
    resource: fhirResource.optional(),
    resourceId: text.optional(),
    extension,
  })
  .superRefine((action, ctx) => {
    if (action.type !== 'delete' && !action.resource)
      ctx.addIssue({ code: 'custom', path: ['resource'], message: `a ${action.type} action needs resource` });
    if (action.type === 'delete' && !action.resourceId && !action.resource)
      ctx.addIssue({ code: 'custom', path: ['resourceId'], message: 'a delete action needs resourceId' });
  });
/** An action. */
export type Action = z.infer<typeof actionSchema>;

/** Suggestion (§ Suggestion). */
export const suggestionSchema = z.strictObject({
  label: text,
  uuid: text.optional(),
  isRecommended: z.boolean().optional(),
  actions: z.array(actionSchema).min(1).optional(),
  extension,
});

/** Link (§ Link): `appContext` only on `smart` links. */
export const linkSchema = z
  .strictObject({
    label: text,
    url,
    type: z.enum(['absolute', 'smart']),
    appContext: text.optional(),
    autolaunchable: z.boolean().optional(),
    extension,
  })
  .refine((link) => link.type === 'smart' || link.appContext === undefined, {
    message: 'appContext is only valid on smart links',
    path: ['appContext'],
  });

/** Source (§ Source). */
export const sourceSchema = z.strictObject({
  label: text,
  url: url.optional(),
  icon: url.optional(),
  topic: codingSchema.optional(),
  extension,
});

/** Card (§ Card Attributes): summary under 140 characters; `selectionBehavior` required with suggestions. */
export const cardSchema = z
  .strictObject({
    uuid: text.optional(),
    summary: text.max(139, 'summary must be under 140 characters'),
    detail: text.optional(),
    indicator: z.enum(['info', 'warning', 'critical']),
    source: sourceSchema,
    suggestions: z.array(suggestionSchema).min(1).optional(),
    selectionBehavior: z.enum(['at-most-one', 'any']).optional(),
    overrideReasons: z.array(displayedCodingSchema).min(1).optional(),
    links: z.array(linkSchema).min(1).optional(),
    extension,
  })
  .refine((card) => !card.suggestions || card.selectionBehavior !== undefined, {
    message: 'selectionBehavior is required when suggestions are present',
    path: ['selectionBehavior'],
  });
/** A card. */
export type Card = z.infer<typeof cardSchema>;

/** The answer to a hook call (§ HTTP Response). */
export const hookResponseSchema = z.strictObject({
  cards: z.array(cardSchema),
  systemActions: z.array(actionSchema).min(1).optional(),
  extension,
});
/** The answer to a hook call. */
export type HookResponse = z.infer<typeof hookResponseSchema>;

// ---------------------------------------------------------------- Feedback

/** One feedback item (§ Feedback): accepted suggestions are required for `accepted`. */
export const feedbackItemSchema = z
  .looseObject({
    card: text,
    outcome: z.enum(['accepted', 'overridden']),
    acceptedSuggestions: z
      .array(z.looseObject({ id: text }))
      .min(1)
      .optional(),
    overrideReason: z.looseObject({ reason: codingSchema.optional(), userComment: text.optional() }).optional(),
    outcomeTimestamp: z.iso.datetime({ offset: true, local: false }),
    extension,
  })
  .refine((item) => item.outcome !== 'accepted' || item.acceptedSuggestions !== undefined, {
    message: 'acceptedSuggestions is required for an accepted outcome',
    path: ['acceptedSuggestions'],
  });
/** One feedback item. */
export type FeedbackItem = z.infer<typeof feedbackItemSchema>;

/** `POST {baseUrl}/cds-services/{id}/feedback`. */
export const feedbackRequestSchema = z.looseObject({ feedback: z.array(feedbackItemSchema).min(1) });

// ---------------------------------------------------------------- Caller authentication

/** The JWT header a CDS Client signs with (§ Trusting CDS Clients): no `none`, no HMAC. */
export const clientJwtHeaderSchema = z.looseObject({
  alg: z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
  kid: text,
  typ: z.literal('JWT'),
  jku: url.optional(),
});

/** The JWT claims of a CDS Client (§ Trusting CDS Clients). */
export const clientJwtClaimsSchema = z.looseObject({
  iss: text,
  aud: z.union([text, z.array(text).min(1)]),
  exp: z.number(),
  iat: z.number(),
  jti: text,
  tenant: text.optional(),
});
