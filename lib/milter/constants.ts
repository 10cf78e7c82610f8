/**
 * The numbers of the Sendmail milter protocol, version 6: command and reply codes, action flags
 * (`SMFIF_*`), protocol flags (`SMFIP_*`) and macro stages (`SMFIM_*`). Values are those of
 * Sendmail's `include/libmilter/mfdef.h` and `mfapi.h`, which Postfix's `src/milter/milter8.c`
 * mirrors; the protocol has no RFC, so these files are the specification.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SMFIC_OPTNEG, SMFIP_NR_HDR } from "./constants.ts";
 * assert.equal(String.fromCharCode(SMFIC_OPTNEG), "O");
 * assert.equal(SMFIP_NR_HDR, 0x80);
 * ```
 *
 * @module
 */

/** The protocol version this implementation speaks (`SMFI_PROT_VERSION`, Sendmail 8.14+). */
export const SMFI_PROT_VERSION = 6;
/** The oldest MTA protocol version accepted, as libmilter's `SMFI_PROT_VERSION_MIN`. */
export const SMFI_PROT_VERSION_MIN = 2;
/** Bytes of a frame's length prefix: a 32-bit big-endian integer (`MILTER_LEN_BYTES`). */
export const MILTER_LEN_BYTES = 4;
/** Bytes of the OPTNEG payload: version, actions, protocol (`MILTER_OPTLEN`). */
export const MILTER_OPTLEN = 12;
/** Largest body chunk an MTA sends in one BODY command (`MILTER_CHUNK_SIZE`). */
export const MILTER_CHUNK_SIZE = 65535;

// Commands, MTA to filter (SMFIC_*), as byte values.

/** `A`: abort the current message transaction; no reply. */
export const SMFIC_ABORT = 0x41;
/** `B`: a chunk of the message body. */
export const SMFIC_BODY = 0x42;
/** `C`: connection information (host name, family, port, address). */
export const SMFIC_CONNECT = 0x43;
/** `D`: macro definitions for the command named by the first payload byte; no reply. */
export const SMFIC_MACRO = 0x44;
/** `E`: end of body (end of message), optionally carrying a last body chunk. */
export const SMFIC_BODYEOB = 0x45;
/** `H`: the HELO/EHLO argument. */
export const SMFIC_HELO = 0x48;
/** `K`: quit, but a new connection follows on the same socket (v6); no reply. */
export const SMFIC_QUIT_NC = 0x4b;
/** `L`: one header field, name and value. */
export const SMFIC_HEADER = 0x4c;
/** `M`: MAIL FROM, the envelope sender and its ESMTP arguments. */
export const SMFIC_MAIL = 0x4d;
/** `N`: end of the header block. */
export const SMFIC_EOH = 0x4e;
/** `O`: option negotiation, always the first command. */
export const SMFIC_OPTNEG = 0x4f;
/** `Q`: quit, the connection ends; no reply. */
export const SMFIC_QUIT = 0x51;
/** `R`: RCPT TO, one envelope recipient and its ESMTP arguments. */
export const SMFIC_RCPT = 0x52;
/** `T`: the DATA command (v4+). */
export const SMFIC_DATA = 0x54;
/** `U`: an SMTP command the MTA did not recognise (v3+). */
export const SMFIC_UNKNOWN = 0x55;

// Replies, filter to MTA (SMFIR_*), as byte values.

/** `+`: add an envelope recipient. */
export const SMFIR_ADDRCPT = 0x2b;
/** `-`: remove an envelope recipient. */
export const SMFIR_DELRCPT = 0x2d;
/** `2`: add an envelope recipient with ESMTP arguments (v6). */
export const SMFIR_ADDRCPT_PAR = 0x32;
/** `4`: 421 shutdown, internal to the MTA. */
export const SMFIR_SHUTDOWN = 0x34;
/** `a`: accept the message (or, at connect, the whole connection) without further filtering. */
export const SMFIR_ACCEPT = 0x61;
/** `b`: replace the body (a chunk of the new body). */
export const SMFIR_REPLBODY = 0x62;
/** `c`: continue with the next command. */
export const SMFIR_CONTINUE = 0x63;
/** `d`: accept the message and silently discard it. */
export const SMFIR_DISCARD = 0x64;
/** `e`: change the envelope sender (v6). */
export const SMFIR_CHGFROM = 0x65;
/** `f`: cause a connection failure. */
export const SMFIR_CONN_FAIL = 0x66;
/** `h`: append a header field. */
export const SMFIR_ADDHEADER = 0x68;
/** `i`: insert a header field at an index (0 is the top). */
export const SMFIR_INSHEADER = 0x69;
/** `l`: set the list of macros wanted at a stage (v6). */
export const SMFIR_SETSYMLIST = 0x6c;
/** `m`: change the nth field of a name; an empty value deletes it. */
export const SMFIR_CHGHEADER = 0x6d;
/** `p`: still working, reset the MTA's timeout. */
export const SMFIR_PROGRESS = 0x70;
/** `q`: quarantine the message with a reason. */
export const SMFIR_QUARANTINE = 0x71;
/** `r`: reject with a 5xx reply. */
export const SMFIR_REJECT = 0x72;
/** `s`: skip the rest of the events of this kind, e.g. body chunks (v6, with SMFIP_SKIP). */
export const SMFIR_SKIP = 0x73;
/** `t`: reject with a 4xx (temporary) reply. */
export const SMFIR_TEMPFAIL = 0x74;
/** `y`: reject with the given SMTP reply code and text. */
export const SMFIR_REPLYCODE = 0x79;
/** `O`: the filter's answer to option negotiation (same byte as SMFIC_OPTNEG). */
export const SMFIR_OPTNEG = 0x4f;

// Address families in the CONNECT command (SMFIA_*).

/** `U`: unknown family; no port or address follows. */
export const SMFIA_UNKNOWN = 0x55;
/** `L`: a unix (local) socket; the address is its path. */
export const SMFIA_UNIX = 0x4c;
/** `4`: IPv4. */
export const SMFIA_INET = 0x34;
/** `6`: IPv6. */
export const SMFIA_INET6 = 0x36;

// Actions the filter may take at end of message (SMFIF_*), negotiated in OPTNEG.

/** Add (and insert) header fields. */
export const SMFIF_ADDHDRS = 0x01;
/** Replace the body. */
export const SMFIF_CHGBODY = 0x02;
/** Add envelope recipients. */
export const SMFIF_ADDRCPT = 0x04;
/** Remove envelope recipients. */
export const SMFIF_DELRCPT = 0x08;
/** Change or delete header fields. */
export const SMFIF_CHGHDRS = 0x10;
/** Quarantine the message. */
export const SMFIF_QUARANTINE = 0x20;
/** Change the envelope sender (v6). */
export const SMFIF_CHGFROM = 0x40;
/** Add recipients with ESMTP arguments (v6). */
export const SMFIF_ADDRCPT_PAR = 0x80;
/** Send macro lists with the OPTNEG reply (v6). */
export const SMFIF_SETSYMLIST = 0x100;
/** Actions of a version 1 filter; libmilter assumes them when the MTA offers 0. */
export const SMFI_V1_ACTS = 0x0f;
/** Actions of a version 2 filter. */
export const SMFI_V2_ACTS = 0x3f;
/** Every action defined by version 6. */
export const SMFI_CURR_ACTS = 0x1ff;

// Protocol flags (SMFIP_*): events the filter does not want, replies it will not send, extras.

/** Do not send CONNECT. */
export const SMFIP_NOCONNECT = 0x01;
/** Do not send HELO. */
export const SMFIP_NOHELO = 0x02;
/** Do not send MAIL. */
export const SMFIP_NOMAIL = 0x04;
/** Do not send RCPT. */
export const SMFIP_NORCPT = 0x08;
/** Do not send BODY chunks. */
export const SMFIP_NOBODY = 0x10;
/** Do not send HEADER. */
export const SMFIP_NOHDRS = 0x20;
/** Do not send EOH. */
export const SMFIP_NOEOH = 0x40;
/** The filter sends no reply to HEADER (also known as SMFIP_NOHREPL). */
export const SMFIP_NR_HDR = 0x80;
/** Do not send UNKNOWN (v3+). */
export const SMFIP_NOUNKNOWN = 0x100;
/** Do not send DATA (v4+). */
export const SMFIP_NODATA = 0x200;
/** The MTA understands SMFIR_SKIP (v6). */
export const SMFIP_SKIP = 0x400;
/** The MTA should also send rejected recipients (v6). */
export const SMFIP_RCPT_REJ = 0x800;
/** No reply to CONNECT (v6). */
export const SMFIP_NR_CONN = 0x1000;
/** No reply to HELO (v6). */
export const SMFIP_NR_HELO = 0x2000;
/** No reply to MAIL (v6). */
export const SMFIP_NR_MAIL = 0x4000;
/** No reply to RCPT (v6). */
export const SMFIP_NR_RCPT = 0x8000;
/** No reply to DATA (v6). */
export const SMFIP_NR_DATA = 0x10000;
/** No reply to UNKNOWN (v6). */
export const SMFIP_NR_UNKN = 0x20000;
/** No reply to EOH (v6). */
export const SMFIP_NR_EOH = 0x40000;
/** No reply to BODY chunks (v6). */
export const SMFIP_NR_BODY = 0x80000;
/** Header values arrive with their leading space: the MTA does not eat the one after the colon. */
export const SMFIP_HDR_LEADSPC = 0x100000;
/** Sendmail may send data up to 256 KiB per command (internal to libmilter, not requested here). */
export const SMFIP_MDS_256K = 0x10000000;
/** Sendmail may send data up to 1 MiB per command (internal to libmilter, not requested here). */
export const SMFIP_MDS_1M = 0x20000000;
/** Protocol flags of a version 1 filter; libmilter assumes them when the MTA offers 0. */
export const SMFI_V1_PROT = 0x3f;
/** Protocol flags of a version 2 filter: the seven NO* flags for connect to end of headers. */
export const SMFI_V2_PROT = 0x7f;
/** Every protocol flag defined by version 6 (Postfix offers exactly this with milter_protocol 6). */
export const SMFI_CURR_PROT = 0x1fffff;
/** Every "do not send" flag. */
export const SMFIP_NOSEND_MASK = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT |
  SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_NODATA;
/** Every "no reply" flag. */
export const SMFIP_NOREPLY_MASK = SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |
  SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;

// Macro stages (SMFIM_*), the numbers used in SETSYMLIST. The order is historical, not SMTP's.

/** Macros sent with CONNECT. */
export const SMFIM_CONNECT = 0;
/** Macros sent with HELO. */
export const SMFIM_HELO = 1;
/** Macros sent with MAIL FROM. */
export const SMFIM_ENVFROM = 2;
/** Macros sent with RCPT TO. */
export const SMFIM_ENVRCPT = 3;
/** Macros sent with DATA. */
export const SMFIM_DATA = 4;
/** Macros sent with end of message. */
export const SMFIM_EOM = 5;
/** Macros sent with end of headers. */
export const SMFIM_EOH = 6;

/**
 * The macro stage a MACRO command's macros belong to, by the command they come before. Postfix
 * also sends the end-of-header macros before each HEADER and the end-of-message macros before
 * each BODY chunk.
 */
export const MACRO_STAGE_OF_COMMAND: ReadonlyMap<number, number> = new Map([
  [SMFIC_CONNECT, SMFIM_CONNECT],
  [SMFIC_HELO, SMFIM_HELO],
  [SMFIC_MAIL, SMFIM_ENVFROM],
  [SMFIC_RCPT, SMFIM_ENVRCPT],
  [SMFIC_DATA, SMFIM_DATA],
  [SMFIC_HEADER, SMFIM_EOH],
  [SMFIC_EOH, SMFIM_EOH],
  [SMFIC_BODY, SMFIM_EOM],
  [SMFIC_BODYEOB, SMFIM_EOM],
]);
