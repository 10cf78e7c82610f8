/**
 * IdentityHeader and IdentityHeaderRemove (opendkim.conf(5); OpenDKIM's _FFR_IDENTITY_HEADER,
 * compiled out of Debian's build): a header field, typically added by the MSA or a list
 * manager, names the identity (`i=`) of the signatures made for the message, and can be removed
 * once it has served. Read from OpenDKIM 2.11's mlfi_eoh() and mlfi_eom().
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import type { Config } from "../config/schema.ts";
import { fieldValueText, type HeaderField, isField } from "../dkim/header.ts";
import { parseAddress } from "./sender.ts";

/**
 * The identity `IdentityHeader` gives a signature that has none: the address of the first field
 * named `header` (`user@domain`, or `@domain` for an address without a local part), or, when the
 * message has no such field or no address in it, `@` and the sender's domain, as OpenDKIM falls
 * back to (it logs "cannot find identity header"). The domain is lower-cased, as dkimd reads
 * every sender domain. An identity outside `d=` is refused by the signer (RFC 6376 §3.5), as
 * libopendkim refuses to generate such a signature.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromLatin1 } from "../bytes.ts";
 * import { headerIdentity } from "./identity_header.ts";
 * const field = (name: string, value: string) => ({ name, raw: fromLatin1(`${name}: ${value}\r\n`) });
 * const fields = [field("From", "a@example.com"), field("X-Identity", "Bob <bob@Mail.Example.com>")];
 * assert.equal(headerIdentity(fields, "x-identity", "example.com"), "bob@mail.example.com");
 * assert.equal(headerIdentity(fields, "X-Missing", "example.com"), "@example.com");
 * ```
 */
export function headerIdentity(
  fields: readonly HeaderField[],
  header: string,
  senderDomain: string,
): string {
  const field = fields.find((f) => isField(f, header));
  const address = field === undefined ? undefined : parseAddress(fieldValueText(field));
  return address ? `${address.user}@${address.domain}` : `@${asciiLower(senderDomain)}`;
}

/**
 * The fields a signer sees under IdentityHeaderRemove: every instance of the identity field
 * left out, as OpenDKIM skips them when it feeds its signing handles, since the first one is
 * deleted before the message goes on.
 */
export function withoutIdentityHeader(
  fields: readonly HeaderField[],
  header: string,
): readonly HeaderField[] {
  return fields.some((f) => isField(f, header))
    ? fields.filter((f) => !isField(f, header))
    : fields;
}

/**
 * The fields a message that dkimd signs is hashed with, by its signer and by the verifier beside
 * it (ResignMailTo, `odkim.verify()`): under IdentityHeaderRemove every instance of the identity
 * field is left out, as OpenDKIM 2.11's mlfi_eoh() skips it before feeding either handle when it
 * signs ("Skip headers we know we're going to delete before signing"), so the results it adds
 * describe the message as it leaves, without that field. Other settings, the fields as they are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromLatin1 } from "../bytes.ts";
 * import { signingViewFields } from "./identity_header.ts";
 * const field = (name: string, value: string) => ({ name, raw: fromLatin1(`${name}: ${value}\r\n`) });
 * const fields = [field("X-Identity", "a@example.com"), field("From", "a@example.com")];
 * const config = { identityHeader: "X-Identity", identityHeaderRemove: true };
 * assert.deepEqual(signingViewFields(fields, config).map((f) => f.name), ["From"]);
 * assert.equal(signingViewFields(fields, { ...config, identityHeaderRemove: false }), fields);
 * ```
 */
export function signingViewFields(
  fields: readonly HeaderField[],
  config: Pick<Config, "identityHeader" | "identityHeaderRemove">,
): readonly HeaderField[] {
  return config.identityHeaderRemove && config.identityHeader !== undefined
    ? withoutIdentityHeader(fields, config.identityHeader)
    : fields;
}
