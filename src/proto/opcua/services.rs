//! OPC UA services (Part 4): the encoding ids of every request and response, their names, and
//! the decoders of the services read in depth.

use super::names::Name;
use super::status;
use super::types::{push_decimal, text, DResult, ExtBody, NodeId, Reader};
use crate::event::{Access, AccessDir, AssetFact, ObjectRef, OpKind, Side, Value, Values};
use crate::proto::recycle;

/// What an encoding id stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgKind {
    /// A service request.
    Request,
    /// A service response.
    Response,
    /// ServiceFault, the response of any failed service.
    Fault,
    /// A structure whose name ends in Request but that is not a message (CallMethodRequest).
    Structure,
}

/// One entry of the encoding table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// Encoding NodeId number (namespace 0).
    pub id: u32,
    /// Name of the encoded type, e.g. `ReadRequest`.
    pub type_name: &'static str,
    /// Service name, e.g. `Read`.
    pub service: &'static str,
    /// Request, response, fault or structure.
    pub kind: MsgKind,
    /// `type_name` as the key of the service counters.
    pub stat: Name,
}

/// The first encoding id of the [`DIRECT`] range.
const DIRECT_FIRST: u32 = 397;
/// Ids of the [`DIRECT`] range (397 to 850: every encoding but the four 122xx ones).
const DIRECT_LEN: usize = 454;
/// For each id from [`DIRECT_FIRST`], its position in [`ENCODINGS`] plus one (0: none),
/// computed at build time: the usual look-up in one step.
const DIRECT: [u8; DIRECT_LEN] = direct_table();

#[allow(clippy::indexing_slicing, clippy::cast_possible_truncation)] // compile time only
const fn direct_table() -> [u8; DIRECT_LEN] {
    let mut out = [0u8; DIRECT_LEN];
    let mut i = 0;
    while i < ENCODINGS.len() {
        let id = ENCODINGS[i].0;
        if id >= DIRECT_FIRST && ((id - DIRECT_FIRST) as usize) < DIRECT_LEN {
            assert!(i < 255);
            out[(id - DIRECT_FIRST) as usize] = (i + 1) as u8;
        }
        i += 1;
    }
    out
}

/// The position of `id` in [`ENCODINGS`].
fn position(id: u32) -> Option<usize> {
    let direct = id
        .checked_sub(DIRECT_FIRST)
        .and_then(|k| DIRECT.get(usize::try_from(k).ok()?));
    match direct {
        Some(&k) => usize::from(k).checked_sub(1),
        None => ENCODINGS.binary_search_by_key(&id, |e| e.0).ok(),
    }
}

/// Looks up a namespace-0 encoding id.
pub fn lookup(id: u32) -> Option<Encoding> {
    let i = position(id)?;
    ENCODINGS
        .get(i)
        .map(|&(id, type_name, service, kind)| Encoding {
            id,
            type_name,
            service,
            kind,
            stat: Name::encoding(i),
        })
}

/// The request encoding id of a service (the function code of its events).
pub fn request_id_of(service: &str) -> Option<u32> {
    ENCODINGS
        .iter()
        .find(|e| e.2 == service && e.3 == MsgKind::Request)
        .map(|e| e.0)
}

/// The operation kind of a service.
pub fn op_kind(service: &str) -> OpKind {
    match service {
        "Read" | "HistoryRead" => OpKind::Read,
        "Write" | "HistoryUpdate" | "AddNodes" | "AddReferences" | "DeleteNodes"
        | "DeleteReferences" => OpKind::Write,
        "Call" => OpKind::Call,
        "Browse"
        | "BrowseNext"
        | "TranslateBrowsePathsToNodeIds"
        | "RegisterNodes"
        | "UnregisterNodes"
        | "QueryFirst"
        | "QueryNext" => OpKind::Browse,
        "CreateSession" | "ActivateSession" | "CloseSession" | "Cancel" | "OpenSecureChannel"
        | "CloseSecureChannel" => OpKind::Session,
        "CreateSubscription"
        | "ModifySubscription"
        | "SetPublishingMode"
        | "Publish"
        | "Republish"
        | "TransferSubscriptions"
        | "DeleteSubscriptions"
        | "CreateMonitoredItems"
        | "ModifyMonitoredItems"
        | "SetMonitoringMode"
        | "SetTriggering"
        | "DeleteMonitoredItems" => OpKind::Subscribe,
        "FindServers"
        | "FindServersOnNetwork"
        | "GetEndpoints"
        | "RegisterServer"
        | "RegisterServer2" => OpKind::Discovery,
        _ => OpKind::Other,
    }
}

/// Encoding ids of the user identity tokens of ActivateSession.
pub mod identity {
    /// AnonymousIdentityToken_Encoding_DefaultBinary.
    pub const ANONYMOUS: u32 = 321;
    /// UserNameIdentityToken_Encoding_DefaultBinary.
    pub const USER_NAME: u32 = 324;
    /// X509IdentityToken_Encoding_DefaultBinary.
    pub const X509: u32 = 327;
    /// IssuedIdentityToken_Encoding_DefaultBinary.
    pub const ISSUED: u32 = 940;
}

/// PublishRequest_Encoding_DefaultBinary.
pub const PUBLISH_REQUEST: u32 = 826;
/// PublishResponse_Encoding_DefaultBinary.
pub const PUBLISH_RESPONSE: u32 = 829;

/// DataChangeNotification_Encoding_DefaultBinary.
const DATA_CHANGE_NOTIFICATION: u32 = 811;

/// Name of a MessageSecurityMode.
pub fn security_mode_name(m: u32) -> &'static str {
    match m {
        0 => "Invalid",
        1 => "None",
        2 => "Sign",
        3 => "SignAndEncrypt",
        _ => "Unknown",
    }
}

fn app_type_name(t: u32) -> &'static str {
    match t {
        0 => "Server",
        1 => "Client",
        2 => "ClientAndServer",
        3 => "DiscoveryServer",
        _ => "Unknown",
    }
}

fn token_type_name(t: u32) -> &'static str {
    match t {
        0 => "Anonymous",
        1 => "UserName",
        2 => "Certificate",
        3 => "IssuedToken",
        _ => "Unknown",
    }
}

/// What a service body told us, to be merged into its transaction's event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    /// Objects addressed (request side), values of writes and call arguments.
    pub accesses: Vec<Access>,
    /// Per-item values of a response (Read results), in request order.
    pub item_values: Vec<Vec<Value>>,
    /// Per-item status codes of a response that were not Good.
    pub bad_items: Vec<u32>,
    /// Protocol details.
    pub details: Vec<(&'static str, Value)>,
    /// Facts about the client or server.
    pub facts: Vec<AssetFact>,
    /// Items beyond the kept cap, decoded and dropped.
    pub items_dropped: u64,
}

/// Facts kept per message; a message repeating per-item facts (endpoints, discovery URLs)
/// cannot grow an event, nor make the de-duplication quadratic, beyond this.
const MAX_FACTS: usize = 32;

/// Details kept per message; per-item details (call objects, offered policies, sampling
/// intervals) stop here.
const MAX_DETAILS: usize = 64;

impl Decoded {
    /// True when nothing was decoded (as [`Decoded::default`]).
    pub fn is_empty(&self) -> bool {
        self.accesses.is_empty()
            && self.item_values.is_empty()
            && self.bad_items.is_empty()
            && self.details.is_empty()
            && self.facts.is_empty()
            && self.items_dropped == 0
    }

    /// True when one more access may be kept; otherwise counts the item as dropped. Checked
    /// before an access's strings are built, so dropped items cost no allocation.
    fn room(&mut self, cap: usize) -> bool {
        if self.accesses.len() < cap {
            true
        } else {
            self.items_dropped += 1;
            false
        }
    }

    /// Keeps an access, in a spare vector (see `recycle`) for the first one.
    fn push_access(&mut self, a: Access) {
        if self.accesses.capacity() == 0 {
            self.accesses = recycle::accesses();
        }
        self.accesses.push(a);
    }

    /// Adds a per-item detail while fewer than [`MAX_DETAILS`] are kept.
    fn detail_capped(&mut self, key: &'static str, v: impl FnOnce() -> Value) {
        if self.details.len() < MAX_DETAILS {
            self.details.push((key, v()));
        }
    }

    fn detail_str(&mut self, key: &'static str, s: Option<&[u8]>) {
        if let Some(t) = text(s) {
            self.details.push((key, Value::Str(t)));
        }
    }

    fn fact(&mut self, side: Side, key: &'static str, s: Option<&[u8]>) {
        if self.facts.len() >= MAX_FACTS {
            return;
        }
        if let Some(value) = text(s) {
            if !value.is_empty() && !self.facts.iter().any(|f| f.key == key && f.value == value) {
                self.facts.push(AssetFact { side, key, value });
            }
        }
    }

    fn bad(&mut self, code: u32) {
        if status::is_bad(code) && self.bad_items.len() < 64 {
            self.bad_items.push(code);
        }
    }
}

/// The fields of a RequestHeader, borrowed from the message (nothing is allocated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHeader<'a> {
    /// Authentication token (session).
    pub auth_token: NodeId<'a>,
    /// Client timestamp (DateTime ticks).
    pub timestamp: i64,
    /// Request handle.
    pub request_handle: u32,
    /// Diagnostics asked for.
    pub return_diagnostics: u32,
    /// Audit entry id (raw bytes).
    pub audit_entry_id: Option<&'a [u8]>,
    /// Timeout hint, ms.
    pub timeout_hint: u32,
}

/// Decodes a RequestHeader.
pub fn request_header<'a>(r: &mut Reader<'a>) -> DResult<RequestHeader<'a>> {
    let auth_token = r.node_id()?;
    let timestamp = r.datetime()?;
    let request_handle = r.u32()?;
    let return_diagnostics = r.u32()?;
    let audit_entry_id = r.string()?;
    let timeout_hint = r.u32()?;
    r.nested(|r| r.extension_object())?;
    Ok(RequestHeader {
        auth_token,
        timestamp,
        request_handle,
        return_diagnostics,
        audit_entry_id,
        timeout_hint,
    })
}

/// The request handle of a RequestHeader, read as [`request_header`] reads it (same reads,
/// same errors) without building the rest.
pub fn request_handle(r: &mut Reader<'_>) -> DResult<u32> {
    if r.can_nest() {
        // A fixed-size authentication token (numeric or GUID NodeId), then the plain
        // header below: read in one step.
        let token = match r.rest().first() {
            Some(0x00) => 2,
            Some(0x01) => 4,
            Some(0x02) => 7,
            Some(0x04) => 19,
            _ => 0,
        };
        if token > 0 {
            let after = r.rest().get(token..).and_then(|t| t.first_chunk::<27>());
            if let Some(
                &[_, _, _, _, _, _, _, _, h0, h1, h2, h3, _, _, _, _, a0, a1, a2, a3, _, _, _, _, e0, e1, e2],
            ) = after
            {
                let audit = [a0, a1, a2, a3];
                if (audit == [0xff; 4] || audit == [0; 4]) && [e0, e1, e2] == [0; 3] {
                    r.take(token + 27)?;
                    return Ok(u32::from_le_bytes([h0, h1, h2, h3]));
                }
            }
        }
    }
    r.node_id()?; // authentication token
    r.datetime()?;
    let handle = r.u32()?;
    if r.can_nest() {
        if let Some(&tail) = r.rest().first_chunk::<15>() {
            // Return diagnostics, a null or empty audit entry id, timeout hint and no
            // additional header: skipped in one step (tested against the full reads).
            let [_, _, _, _, a0, a1, a2, a3, _, _, _, _, e0, e1, e2] = tail;
            let audit = [a0, a1, a2, a3];
            if (audit == [0xff; 4] || audit == [0; 4]) && [e0, e1, e2] == [0; 3] {
                r.take(15)?;
                return Ok(handle);
            }
        }
    }
    r.u32()?; // return diagnostics
    r.string()?; // audit entry id
    r.u32()?; // timeout hint
    r.nested(|r| r.extension_object())?;
    Ok(handle)
}

/// The fields of a ResponseHeader that events use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Server timestamp (DateTime ticks).
    pub timestamp: i64,
    /// Request handle echoed.
    pub request_handle: u32,
    /// Service result.
    pub service_result: u32,
    /// Strings of the string table (capped count).
    pub string_table: Vec<String>,
}

/// Decodes a ResponseHeader.
pub fn response_header(r: &mut Reader<'_>) -> DResult<ResponseHeader> {
    let (timestamp, request_handle, service_result) = response_status(r)?;
    let string_table = response_header_rest(r)?;
    Ok(ResponseHeader {
        timestamp,
        request_handle,
        service_result,
        string_table,
    })
}

/// The first fields of a ResponseHeader: timestamp, request handle and service result.
pub fn response_status(r: &mut Reader<'_>) -> DResult<(i64, u32, u32)> {
    Ok((r.datetime()?, r.u32()?, r.status_code()?))
}

/// The rest of a ResponseHeader after [`response_status`]: diagnostics, string table (the
/// first 16 strings are returned) and additional header.
pub fn response_header_rest(r: &mut Reader<'_>) -> DResult<Vec<String>> {
    r.diagnostic_info()?;
    let n = r.array_len(4)?;
    let mut string_table = Vec::new();
    for _ in 0..n {
        let s = r.string()?;
        if string_table.len() < 16 {
            string_table.push(text(s).unwrap_or_default());
        }
    }
    r.nested(|r| r.extension_object())?;
    Ok(string_table)
}

/// The rest of a ResponseHeader as almost every server sends it: no diagnostics (mask 0),
/// a null or empty string table, no additional header (null NodeId, no body).
const PLAIN_HEADER_REST: [[u8; 8]; 2] = [
    [0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00],
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
];

/// [`response_header_rest`] without keeping the string table: the same reads and errors
/// (the plain rest is skipped in one step when nesting is allowed; tested).
pub fn skip_response_header_rest(r: &mut Reader<'_>) -> DResult<()> {
    if r.can_nest() {
        if let Some(head) = r.rest().first_chunk::<8>() {
            if PLAIN_HEADER_REST.contains(head) {
                r.take(8)?;
                return Ok(());
            }
        }
    }
    r.diagnostic_info()?;
    strings(r)?;
    r.nested(|r| r.extension_object())?;
    Ok(())
}

fn strings(r: &mut Reader<'_>) -> DResult<()> {
    let n = r.array_len(4)?;
    for _ in 0..n {
        r.string()?;
    }
    Ok(())
}

fn status_codes(r: &mut Reader<'_>, d: &mut Decoded) -> DResult<()> {
    let n = r.array_len(4)?;
    for _ in 0..n {
        let c = r.status_code()?;
        d.bad(c);
    }
    Ok(())
}

fn variants(r: &mut Reader<'_>, keep: usize) -> DResult<Vec<Value>> {
    let n = r.array_len(1)?;
    let mut out = Vec::new();
    for _ in 0..n {
        for x in r.variant_values()? {
            if out.len() < keep {
                out.push(x);
            }
        }
    }
    Ok(out)
}

/// The object name of a monitored item's notification, `client_handle=<handle>`.
fn client_handle(handle: u32) -> String {
    let mut s = String::with_capacity(24);
    s.push_str("client_handle=");
    push_decimal(&mut s, handle);
    s
}

/// Slots of a [`HandleNames`] cache.
const HANDLE_NAME_SLOTS: usize = 32;

/// The `client_handle=<handle>` names a parser built last, one per slot (the handle modulo
/// the slot count): a monitored item's name recurs in every Publish response, and a copy
/// of a kept name costs less than writing it again. At most `HANDLE_NAME_SLOTS` names.
#[derive(Clone, Debug, Default)]
pub struct HandleNames {
    slots: Vec<(u32, String)>,
    /// Empty strings taken from the recycled ones (at most `NAME_BATCH`), for the copies.
    spare: Vec<String>,
    /// Empty value lists taken from the recycled ones (at most `NAME_BATCH`).
    spare_values: Vec<Vec<Value>>,
}

/// Recycled strings a [`HandleNames`] takes at once.
const NAME_BATCH: usize = 16;

impl HandleNames {
    /// An empty value list for one value: a recycled one taken with others in one go (as
    /// [`recycle::values`] gives, without a look at the spares per item).
    fn value_list(&mut self) -> Vec<Value> {
        match self.spare_values.pop() {
            Some(v) => v,
            None => {
                recycle::take_values(&mut self.spare_values, NAME_BATCH);
                self.spare_values
                    .pop()
                    .unwrap_or_else(|| recycle::values(1))
            }
        }
    }

    /// The name of `handle` (as [`client_handle`] writes it): a kept name copied into a
    /// spare string when there are both, else [`HandleNames::name_slow`].
    #[inline]
    fn name(&mut self, handle: u32) -> String {
        let HandleNames { slots, spare, .. } = self;
        if let Some((h, kept)) = slots.get(handle as usize % HANDLE_NAME_SLOTS) {
            // A kept name is never empty: an empty slot holds none.
            if *h == handle && !kept.is_empty() {
                if let Some(mut out) = spare.pop() {
                    out.push_str(kept);
                    return out;
                }
            }
        }
        self.name_slow(handle)
    }

    /// [`HandleNames::name`] when the name is not kept or no spare string is left.
    #[inline(never)]
    fn name_slow(&mut self, handle: u32) -> String {
        if self.slots.is_empty() {
            self.slots = vec![(0, String::new()); HANDLE_NAME_SLOTS];
        }
        let i = handle as usize % HANDLE_NAME_SLOTS;
        match self.slots.get_mut(i) {
            Some((h, s)) => {
                // A kept name is never empty: an empty slot holds none.
                if *h != handle || s.is_empty() {
                    *h = handle;
                    *s = client_handle(handle);
                }
                copy_into_spare(&mut self.spare, s)
            }
            None => client_handle(handle),
        }
    }
}

/// A copy of `text` in one of the `spare` strings, refilled from the recycled ones when empty.
#[inline]
fn copy_into_spare(spare: &mut Vec<String>, text: &str) -> String {
    let mut out = match spare.pop() {
        Some(out) => out,
        None => {
            recycle::take_names(spare, NAME_BATCH);
            spare
                .pop()
                .unwrap_or_else(|| String::with_capacity(text.len()))
        }
    };
    out.push_str(text);
    out
}

/// Most items a spare access list is asked for (larger lists are allocated directly), and
/// the room of a list allocated instead of a spare too small: the largest access list the
/// recycler keeps, so that the lists of Publish events come back as spares with room for
/// the next one's items (a new list per Publish, freed when recycled, cost more).
const MAX_SPARE_LIST_ROOM: usize = 8;

/// Most accesses reserved at once for a DataChangeNotification's items.
const MAX_NOTIFICATIONS_RESERVED: usize = 16;

/// The items of a DataChangeNotification body: one access per monitored item,
/// `client_handle=<handle>` with the item's values, as many as the access cap keeps.
fn data_change_notifications(
    r: &mut Reader<'_>,
    d: &mut Decoded,
    cap: usize,
    names: &mut HandleNames,
) -> DResult<()> {
    data_change_notifications_with(r, d, cap, names, true)
}

/// [`data_change_notifications`], with (`fast`) or without the one-step read of the common
/// item (the same result, tested).
#[inline(always)]
fn data_change_notifications_with(
    r: &mut Reader<'_>,
    d: &mut Decoded,
    cap: usize,
    names: &mut HandleNames,
    fast: bool,
) -> DResult<()> {
    let m = r.array_len(5)?;
    let room = m
        .min(cap.saturating_sub(d.accesses.len()))
        .min(MAX_NOTIFICATIONS_RESERVED);
    if room > 0 {
        if d.accesses.capacity() == 0 {
            if room > MAX_SPARE_LIST_ROOM {
                // More than a spare list has room for, most of the time: a new one costs
                // less than a spare taken, found too small, and dropped.
                d.accesses = Vec::with_capacity(room);
            } else {
                d.accesses = recycle::accesses();
                if d.accesses.capacity() < room {
                    // A spare list too small: a new one costs less than growing it (a copy),
                    // with room for any list asked of a spare.
                    d.accesses = Vec::with_capacity(MAX_SPARE_LIST_ROOM);
                }
            }
        }
        d.accesses.reserve(room);
    }
    // The depth and the limits allow the one-step read for every item or for none.
    let fast = fast && r.fixed_items_allowed();
    for _ in 0..m {
        if fast {
            if let Some((handle, value)) = r.fixed_monitored_item_allowed() {
                // The value list is built only for a kept item.
                if d.room(cap) {
                    let mut values = names.value_list();
                    values.push(value);
                    d.accesses.push(Access {
                        dir: AccessDir::Read,
                        object: ObjectRef::Other {
                            name: names.name(handle),
                        },
                        values: values.into(),
                    });
                }
                continue;
            }
        }
        let handle = r.u32()?;
        let (values, _) = r.nested(|r| r.data_value_values())?;
        if d.room(cap) {
            d.accesses.push(Access {
                dir: AccessDir::Read,
                object: ObjectRef::Other {
                    name: names.name(handle),
                },
                values: values.into(),
            });
        }
    }
    Ok(())
}

fn node(node_id: String, attribute: Option<u32>) -> ObjectRef {
    ObjectRef::Node { node_id, attribute }
}

fn application_description(r: &mut Reader<'_>, d: &mut Decoded, side: Side) -> DResult<()> {
    let uri = r.string()?;
    let product = r.string()?;
    let name = r.localized_text()?;
    let app_type = r.u32()?;
    d.fact(side, "application_uri", uri);
    d.fact(side, "product_uri", product);
    d.fact(side, "application_name", name.text);
    d.fact(
        side,
        "application_type",
        Some(app_type_name(app_type).as_bytes()),
    );
    r.string()?; // gateway server URI
    r.string()?; // discovery profile URI
    let n = r.array_len(4)?;
    for _ in 0..n {
        let url = r.string()?;
        d.fact(side, "discovery_url", url);
    }
    Ok(())
}

fn endpoint_descriptions(r: &mut Reader<'_>, d: &mut Decoded) -> DResult<()> {
    let n = r.array_len(1)?;
    d.details.push(("endpoints", Value::Int(n as i64)));
    for _ in 0..n {
        let url = r.string()?;
        d.fact(Side::Server, "endpoint_url", url);
        application_description(r, d, Side::Server)?;
        let cert = r.bytestring()?;
        if cert.is_some_and(|c| !c.is_empty()) {
            d.fact(Side::Server, "certificate", Some(b"present"));
        }
        let mode = r.u32()?;
        let policy = r.string()?;
        if d.details.len() < MAX_DETAILS {
            let offer = format!(
                "{}/{}",
                super::transport::policy_short(policy.unwrap_or_default()),
                security_mode_name(mode)
            );
            if !d
                .details
                .iter()
                .any(|(k, v)| *k == "offered_security" && matches!(v, Value::Str(x) if *x == offer))
            {
                d.details.push(("offered_security", Value::Str(offer)));
            }
        }
        let tokens = r.array_len(1)?;
        for _ in 0..tokens {
            r.string()?; // policy id
            let t = r.u32()?;
            r.string()?; // issued token type
            r.string()?; // issuer endpoint URL
            r.string()?; // security policy URI
            let name = token_type_name(t);
            if !d
                .details
                .iter()
                .any(|(k, v)| *k == "offered_identity" && matches!(v, Value::Str(x) if x == name))
            {
                d.details
                    .push(("offered_identity", Value::Str(name.to_string())));
            }
        }
        r.string()?; // transport profile URI
        r.u8()?; // security level
    }
    Ok(())
}

/// A ReadValueId: node and attribute (index range and data encoding are skipped).
fn read_value_id<'a>(r: &mut Reader<'a>) -> DResult<(NodeId<'a>, u32)> {
    let id = r.node_id()?;
    let attribute = r.u32()?;
    r.string()?; // index range
    r.qualified_name()?; // data encoding
    Ok((id, attribute))
}

fn signature_data(r: &mut Reader<'_>) -> DResult<()> {
    r.string()?;
    r.bytestring()?;
    Ok(())
}

fn browse_results(r: &mut Reader<'_>, d: &mut Decoded) -> DResult<()> {
    let n = r.array_len(9)?;
    let mut refs = 0i64;
    for _ in 0..n {
        let c = r.status_code()?;
        d.bad(c);
        r.bytestring()?; // continuation point
        let m = r.array_len(1)?;
        for _ in 0..m {
            r.node_id()?; // reference type
            r.bool()?; // forward
            r.expanded_node_id()?;
            r.qualified_name()?;
            r.localized_text()?;
            r.u32()?; // node class
            r.expanded_node_id()?; // type definition
            refs += 1;
        }
    }
    d.details.push(("references", Value::Int(refs)));
    r.skip_diagnostic_infos()
}

/// Decodes the body of a request after its RequestHeader.
pub fn decode_request(service: &str, r: &mut Reader<'_>, d: &mut Decoded) -> DResult<()> {
    let keep = r.limits().max_values_kept;
    let cap = r.limits().max_accesses_kept;
    match service {
        "GetEndpoints" | "FindServers" => {
            let url = r.string()?;
            d.detail_str("endpoint_url", url);
            strings(r)?; // locale ids
            strings(r)?; // profile URIs / server URIs
        }
        "CreateSession" => {
            application_description(r, d, Side::Client)?;
            r.string()?; // server URI
            let url = r.string()?;
            d.detail_str("endpoint_url", url);
            let name = r.string()?;
            d.detail_str("session_name", name);
            r.bytestring()?; // nonce
            let cert = r.bytestring()?;
            d.details.push((
                "client_certificate",
                Value::Bool(cert.is_some_and(|c| !c.is_empty())),
            ));
            let timeout = r.f64()?;
            d.details
                .push(("requested_session_timeout_ms", Value::Float(timeout)));
        }
        "ActivateSession" => {
            signature_data(r)?;
            let n = r.array_len(8)?;
            for _ in 0..n {
                r.bytestring()?;
                r.bytestring()?;
            }
            strings(r)?; // locale ids
            let token = r.nested(|r| r.extension_object())?;
            let (kind, body) = match (token.ns0_type(), token.body) {
                (Some(identity::ANONYMOUS), b) => ("Anonymous", b),
                (Some(identity::USER_NAME), b) => ("UserName", b),
                (Some(identity::X509), b) => ("X509", b),
                (Some(identity::ISSUED), b) => ("IssuedToken", b),
                (None, ExtBody::None) | (Some(0), _) => ("None", ExtBody::None),
                (_, b) => ("Unknown", b),
            };
            d.details
                .push(("identity_token", Value::Str(kind.to_string())));
            if let ExtBody::Binary(b) = body {
                let mut t = Reader::new(b, r.limits());
                let policy = t.string()?;
                d.detail_str("identity_policy_id", policy);
                if kind == "UserName" {
                    // The user name only; the password that follows is never read.
                    let user = t.string()?;
                    d.detail_str("user_name", user);
                }
            }
            signature_data(r)?;
        }
        "CloseSession" => {
            let del = r.bool()?;
            d.details.push(("delete_subscriptions", Value::Bool(del)));
        }
        "Read" => {
            let max_age = r.f64()?;
            d.details.push(("max_age_ms", Value::Float(max_age)));
            r.u32()?; // timestamps to return
            let n = r.array_len(13)?;
            for _ in 0..n {
                let (id, attribute) = read_value_id(r)?;
                if d.room(cap) {
                    d.push_access(Access {
                        dir: AccessDir::Read,
                        object: node(id.to_text(), Some(attribute)),
                        values: Values::new(),
                    });
                }
            }
        }
        "Write" => {
            let n = r.array_len(11)?; // NodeId 2, attribute 4, index range 4, DataValue 1
            for _ in 0..n {
                let id = r.node_id()?;
                let attribute = r.u32()?;
                r.string()?; // index range
                let (values, _) = r.nested(|r| r.data_value_values())?;
                if d.room(cap) {
                    d.push_access(Access {
                        dir: AccessDir::Write,
                        object: node(id.to_text(), Some(attribute)),
                        values: values.into(),
                    });
                }
            }
        }
        "Call" => {
            let n = r.array_len(8)?; // object, method: two-byte NodeIds; arguments: length
            for _ in 0..n {
                let object = r.node_id()?;
                let method = r.node_id()?;
                let args = variants(r, keep)?;
                d.detail_capped("call_object", || Value::Str(object.to_text()));
                if d.room(cap) {
                    d.push_access(Access {
                        dir: AccessDir::Write,
                        object: node(method.to_text(), None),
                        values: args.into(),
                    });
                }
            }
        }
        "Browse" => {
            r.node_id()?; // view id
            r.datetime()?;
            r.u32()?; // view version
            r.u32()?; // max references per node
            let n = r.array_len(17)?;
            for _ in 0..n {
                let id = r.node_id()?;
                r.u32()?; // browse direction
                r.node_id()?; // reference type
                r.bool()?; // include subtypes
                r.u32()?; // node class mask
                r.u32()?; // result mask
                if d.room(cap) {
                    d.push_access(Access {
                        dir: AccessDir::Read,
                        object: node(id.to_text(), None),
                        values: Values::new(),
                    });
                }
            }
        }
        "BrowseNext" => {
            let release = r.bool()?;
            d.details
                .push(("release_continuation_points", Value::Bool(release)));
            let n = r.array_len(4)?;
            for _ in 0..n {
                r.bytestring()?;
            }
            d.details
                .push(("continuation_points", Value::Int(n as i64)));
        }
        "CreateSubscription" => {
            let interval = r.f64()?;
            d.details
                .push(("publishing_interval_ms", Value::Float(interval)));
            let lifetime = r.u32()?;
            d.details
                .push(("lifetime_count", Value::Int(i64::from(lifetime))));
            r.u32()?; // max keep-alive count
            r.u32()?; // max notifications per publish
            let enabled = r.bool()?;
            d.details.push(("publishing_enabled", Value::Bool(enabled)));
            r.u8()?; // priority
        }
        "CreateMonitoredItems" => {
            let sub = r.u32()?;
            d.details
                .push(("subscription_id", Value::Int(i64::from(sub))));
            r.u32()?; // timestamps to return
            let n = r.array_len(13 + 4 + 21)?;
            for _ in 0..n {
                let (id, attribute) = read_value_id(r)?;
                r.u32()?; // monitoring mode
                r.u32()?; // client handle
                let sampling = r.f64()?;
                r.nested(|r| r.extension_object())?; // filter
                r.u32()?; // queue size
                r.bool()?; // discard oldest
                d.detail_capped("sampling_interval_ms", || Value::Float(sampling));
                if d.room(cap) {
                    d.push_access(Access {
                        dir: AccessDir::Read,
                        object: node(id.to_text(), Some(attribute)),
                        values: Values::new(),
                    });
                }
            }
        }
        "Publish" => publish_request(r, d)?,
        _ => {}
    }
    Ok(())
}

/// The body of a PublishRequest (what [`decode_request`] reads for `Publish`): the number of
/// acknowledgements.
pub fn publish_request(r: &mut Reader<'_>, d: &mut Decoded) -> DResult<()> {
    let n = publish_acks(r)?;
    if d.details.capacity() == 0 {
        // Room for this detail and the response's two, allocated at once.
        d.details = recycle::details(4);
    }
    d.details.push(("acknowledgements", Value::Int(n)));
    Ok(())
}

/// The number of acknowledgements of a PublishRequest body, read past.
#[inline]
pub fn publish_acks(r: &mut Reader<'_>) -> DResult<i64> {
    let n = r.array_len(8)?;
    // Subscription ids and sequence numbers, unused: skipped at once (`array_len` checked
    // that they are there).
    r.take(n.saturating_mul(8))?;
    Ok(n as i64)
}

/// The body of a PublishResponse: subscription, sequence, and the items of its
/// DataChangeNotifications. With `fast`, a notification whose ExtensionObject has the usual
/// shape (four-byte type id, binary body) is read in one step (the same result, tested).
#[inline(always)]
fn publish_response(
    r: &mut Reader<'_>,
    d: &mut Decoded,
    cap: usize,
    names: &mut HandleNames,
    fast: bool,
) -> DResult<()> {
    let sub = r.u32()?;
    if d.details.capacity() == 0 {
        // The two details below, allocated at once.
        d.details = Vec::with_capacity(2);
    }
    d.details
        .push(("subscription_id", Value::Int(i64::from(sub))));
    let middle = if fast { publish_middle(r) } else { None };
    let n = match middle {
        Some((seq, n)) => {
            d.details
                .push(("notification_sequence", Value::Int(i64::from(seq))));
            n
        }
        None => {
            let n = r.array_len(4)?;
            r.take(n.saturating_mul(4))?; // available sequence numbers, unused (checked there)
            r.bool()?; // more notifications
            let seq = r.u32()?;
            d.details
                .push(("notification_sequence", Value::Int(i64::from(seq))));
            r.datetime()?;
            r.array_len(3)?
        }
    };
    for _ in 0..n {
        if fast {
            if let Some(b) = r.four_byte_binary_ext(DATA_CHANGE_NOTIFICATION) {
                let mut inner = Reader::new(b, r.limits());
                data_change_notifications(&mut inner, d, cap, names)?;
                continue;
            }
        }
        let eo = r.nested(|r| r.extension_object())?;
        if let (Some(DATA_CHANGE_NOTIFICATION), ExtBody::Binary(b)) = (eo.ns0_type(), eo.body) {
            let mut inner = Reader::new(b, r.limits());
            data_change_notifications(&mut inner, d, cap, names)?;
        }
    }
    if fast {
        if let Some(&[r0, r1, r2, r3, g0, g1, g2, g3]) = r.rest().first_chunk::<8>() {
            // No results and no diagnostics (null or empty arrays): nothing to read.
            let none = |a: [u8; 4]| a == [0xff; 4] || a == [0; 4];
            if none([r0, r1, r2, r3]) && none([g0, g1, g2, g3]) {
                r.take(8)?;
                return Ok(());
            }
        }
    }
    status_codes(r, d)?;
    r.skip_diagnostic_infos()
}

/// What a PublishResponse holds between its subscription id and its notifications, read in
/// one step when it is all there and its two array lengths pass `array_len`'s checks: the
/// notification sequence number and the number of notifications. `None`, the reader
/// untouched, for anything else (the reads one by one then give the errors).
fn publish_middle(r: &mut Reader<'_>) -> Option<(u32, usize)> {
    let rest = r.rest();
    let max = r.limits().max_array_len;
    let len = |b: [u8; 4]| match i32::from_le_bytes(b) {
        -1 => Some(0),
        n => usize::try_from(n).ok().filter(|n| *n <= max),
    };
    let n = len(*rest.first_chunk::<4>()?)?;
    let after = n.checked_mul(4)?.checked_add(4)?;
    let tail = rest.get(after..)?;
    // More notifications, sequence number, publish time, notification count.
    let &[_, s0, s1, s2, s3, _, _, _, _, _, _, _, _, m0, m1, m2, m3] = tail.first_chunk::<17>()?;
    let m = len([m0, m1, m2, m3])?;
    let used = after.checked_add(17)?;
    if m.saturating_mul(3) > rest.len().checked_sub(used)? {
        return None;
    }
    r.take(used).ok()?;
    Some((u32::from_le_bytes([s0, s1, s2, s3]), m))
}

/// The body of a PublishResponse (what [`decode_response_with`] reads for `Publish`).
pub fn decode_publish_response(
    r: &mut Reader<'_>,
    d: &mut Decoded,
    names: &mut HandleNames,
) -> DResult<()> {
    let cap = r.limits().max_accesses_kept;
    publish_response(r, d, cap, names, true)
}

/// Decodes the body of a response after its ResponseHeader.
pub fn decode_response(service: &str, r: &mut Reader<'_>, d: &mut Decoded) -> DResult<()> {
    decode_response_with(service, r, d, &mut HandleNames::default())
}

/// Decodes the body of a response after its ResponseHeader, taking the names of monitored
/// items from `names` (the same as [`decode_response`] gives).
pub fn decode_response_with(
    service: &str,
    r: &mut Reader<'_>,
    d: &mut Decoded,
    names: &mut HandleNames,
) -> DResult<()> {
    let keep = r.limits().max_values_kept;
    let cap = r.limits().max_accesses_kept;
    match service {
        "GetEndpoints" => endpoint_descriptions(r, d)?,
        "FindServers" => {
            let n = r.array_len(1)?;
            d.details.push(("servers", Value::Int(n as i64)));
            for _ in 0..n {
                application_description(r, d, Side::Server)?;
            }
        }
        "CreateSession" => {
            let session = r.node_id()?.to_text();
            d.details.push(("session_id", Value::Str(session)));
            r.node_id()?; // authentication token
            let timeout = r.f64()?;
            d.details
                .push(("revised_session_timeout_ms", Value::Float(timeout)));
            r.bytestring()?; // nonce
            let cert = r.bytestring()?;
            if cert.is_some_and(|c| !c.is_empty()) {
                d.fact(Side::Server, "certificate", Some(b"present"));
            }
            endpoint_descriptions(r, d)?;
            let n = r.array_len(8)?; // server software certificates
            for _ in 0..n {
                r.bytestring()?;
                r.bytestring()?;
            }
            signature_data(r)?;
            let max = r.u32()?;
            d.details
                .push(("max_request_message_size", Value::Int(i64::from(max))));
        }
        "ActivateSession" => {
            r.bytestring()?; // nonce
            status_codes(r, d)?;
            r.skip_diagnostic_infos()?;
        }
        "Read" => {
            let n = r.array_len(1)?;
            for _ in 0..n {
                let (values, status) = r.nested(|r| r.data_value_values())?;
                if let Some(s) = status {
                    d.bad(s);
                }
                if d.item_values.len() < cap {
                    d.item_values.push(values);
                }
            }
            r.skip_diagnostic_infos()?;
        }
        "Write" | "DeleteMonitoredItems" | "SetMonitoringMode" | "DeleteSubscriptions" => {
            status_codes(r, d)?;
            r.skip_diagnostic_infos()?;
        }
        "Call" => {
            let n = r.array_len(16)?;
            for _ in 0..n {
                let c = r.status_code()?;
                d.bad(c);
                status_codes(r, d)?;
                r.skip_diagnostic_infos()?;
                let out = variants(r, keep)?;
                if d.item_values.len() < cap {
                    d.item_values.push(out);
                }
            }
            r.skip_diagnostic_infos()?;
        }
        "Browse" | "BrowseNext" => browse_results(r, d)?,
        "CreateSubscription" => {
            let id = r.u32()?;
            d.details
                .push(("subscription_id", Value::Int(i64::from(id))));
            let interval = r.f64()?;
            d.details
                .push(("revised_publishing_interval_ms", Value::Float(interval)));
        }
        "CreateMonitoredItems" => {
            let n = r.array_len(20)?;
            for _ in 0..n {
                let c = r.status_code()?;
                d.bad(c);
                r.u32()?; // monitored item id
                r.f64()?; // revised sampling interval
                r.u32()?; // revised queue size
                r.nested(|r| r.extension_object())?;
            }
            r.skip_diagnostic_infos()?;
        }
        "Publish" => publish_response(r, d, cap, names, true)?,
        _ => {}
    }
    Ok(())
}

/// Binary encoding ids of OPC UA Part 4 messages (generated from NodeIds.csv): (id, encoding name, service, kind).
pub(crate) const ENCODINGS: &[(u32, &str, &str, MsgKind)] = &[
    (397, "ServiceFault", "ServiceFault", MsgKind::Fault),
    (422, "FindServersRequest", "FindServers", MsgKind::Request),
    (425, "FindServersResponse", "FindServers", MsgKind::Response),
    (428, "GetEndpointsRequest", "GetEndpoints", MsgKind::Request),
    (
        431,
        "GetEndpointsResponse",
        "GetEndpoints",
        MsgKind::Response,
    ),
    (
        437,
        "RegisterServerRequest",
        "RegisterServer",
        MsgKind::Request,
    ),
    (
        440,
        "RegisterServerResponse",
        "RegisterServer",
        MsgKind::Response,
    ),
    (
        446,
        "OpenSecureChannelRequest",
        "OpenSecureChannel",
        MsgKind::Request,
    ),
    (
        449,
        "OpenSecureChannelResponse",
        "OpenSecureChannel",
        MsgKind::Response,
    ),
    (
        452,
        "CloseSecureChannelRequest",
        "CloseSecureChannel",
        MsgKind::Request,
    ),
    (
        455,
        "CloseSecureChannelResponse",
        "CloseSecureChannel",
        MsgKind::Response,
    ),
    (
        461,
        "CreateSessionRequest",
        "CreateSession",
        MsgKind::Request,
    ),
    (
        464,
        "CreateSessionResponse",
        "CreateSession",
        MsgKind::Response,
    ),
    (
        467,
        "ActivateSessionRequest",
        "ActivateSession",
        MsgKind::Request,
    ),
    (
        470,
        "ActivateSessionResponse",
        "ActivateSession",
        MsgKind::Response,
    ),
    (473, "CloseSessionRequest", "CloseSession", MsgKind::Request),
    (
        476,
        "CloseSessionResponse",
        "CloseSession",
        MsgKind::Response,
    ),
    (479, "CancelRequest", "Cancel", MsgKind::Request),
    (482, "CancelResponse", "Cancel", MsgKind::Response),
    (488, "AddNodesRequest", "AddNodes", MsgKind::Request),
    (491, "AddNodesResponse", "AddNodes", MsgKind::Response),
    (
        494,
        "AddReferencesRequest",
        "AddReferences",
        MsgKind::Request,
    ),
    (
        497,
        "AddReferencesResponse",
        "AddReferences",
        MsgKind::Response,
    ),
    (500, "DeleteNodesRequest", "DeleteNodes", MsgKind::Request),
    (503, "DeleteNodesResponse", "DeleteNodes", MsgKind::Response),
    (
        506,
        "DeleteReferencesRequest",
        "DeleteReferences",
        MsgKind::Request,
    ),
    (
        509,
        "DeleteReferencesResponse",
        "DeleteReferences",
        MsgKind::Response,
    ),
    (527, "BrowseRequest", "Browse", MsgKind::Request),
    (530, "BrowseResponse", "Browse", MsgKind::Response),
    (533, "BrowseNextRequest", "BrowseNext", MsgKind::Request),
    (536, "BrowseNextResponse", "BrowseNext", MsgKind::Response),
    (
        554,
        "TranslateBrowsePathsToNodeIdsRequest",
        "TranslateBrowsePathsToNodeIds",
        MsgKind::Request,
    ),
    (
        557,
        "TranslateBrowsePathsToNodeIdsResponse",
        "TranslateBrowsePathsToNodeIds",
        MsgKind::Response,
    ),
    (
        560,
        "RegisterNodesRequest",
        "RegisterNodes",
        MsgKind::Request,
    ),
    (
        563,
        "RegisterNodesResponse",
        "RegisterNodes",
        MsgKind::Response,
    ),
    (
        566,
        "UnregisterNodesRequest",
        "UnregisterNodes",
        MsgKind::Request,
    ),
    (
        569,
        "UnregisterNodesResponse",
        "UnregisterNodes",
        MsgKind::Response,
    ),
    (615, "QueryFirstRequest", "QueryFirst", MsgKind::Request),
    (618, "QueryFirstResponse", "QueryFirst", MsgKind::Response),
    (621, "QueryNextRequest", "QueryNext", MsgKind::Request),
    (624, "QueryNextResponse", "QueryNext", MsgKind::Response),
    (631, "ReadRequest", "Read", MsgKind::Request),
    (634, "ReadResponse", "Read", MsgKind::Response),
    (664, "HistoryReadRequest", "HistoryRead", MsgKind::Request),
    (667, "HistoryReadResponse", "HistoryRead", MsgKind::Response),
    (673, "WriteRequest", "Write", MsgKind::Request),
    (676, "WriteResponse", "Write", MsgKind::Response),
    (
        700,
        "HistoryUpdateRequest",
        "HistoryUpdate",
        MsgKind::Request,
    ),
    (
        703,
        "HistoryUpdateResponse",
        "HistoryUpdate",
        MsgKind::Response,
    ),
    (706, "CallMethodRequest", "CallMethod", MsgKind::Structure),
    (712, "CallRequest", "Call", MsgKind::Request),
    (715, "CallResponse", "Call", MsgKind::Response),
    (
        745,
        "MonitoredItemCreateRequest",
        "MonitoredItemCreate",
        MsgKind::Structure,
    ),
    (
        751,
        "CreateMonitoredItemsRequest",
        "CreateMonitoredItems",
        MsgKind::Request,
    ),
    (
        754,
        "CreateMonitoredItemsResponse",
        "CreateMonitoredItems",
        MsgKind::Response,
    ),
    (
        757,
        "MonitoredItemModifyRequest",
        "MonitoredItemModify",
        MsgKind::Structure,
    ),
    (
        763,
        "ModifyMonitoredItemsRequest",
        "ModifyMonitoredItems",
        MsgKind::Request,
    ),
    (
        766,
        "ModifyMonitoredItemsResponse",
        "ModifyMonitoredItems",
        MsgKind::Response,
    ),
    (
        769,
        "SetMonitoringModeRequest",
        "SetMonitoringMode",
        MsgKind::Request,
    ),
    (
        772,
        "SetMonitoringModeResponse",
        "SetMonitoringMode",
        MsgKind::Response,
    ),
    (
        775,
        "SetTriggeringRequest",
        "SetTriggering",
        MsgKind::Request,
    ),
    (
        778,
        "SetTriggeringResponse",
        "SetTriggering",
        MsgKind::Response,
    ),
    (
        781,
        "DeleteMonitoredItemsRequest",
        "DeleteMonitoredItems",
        MsgKind::Request,
    ),
    (
        784,
        "DeleteMonitoredItemsResponse",
        "DeleteMonitoredItems",
        MsgKind::Response,
    ),
    (
        787,
        "CreateSubscriptionRequest",
        "CreateSubscription",
        MsgKind::Request,
    ),
    (
        790,
        "CreateSubscriptionResponse",
        "CreateSubscription",
        MsgKind::Response,
    ),
    (
        793,
        "ModifySubscriptionRequest",
        "ModifySubscription",
        MsgKind::Request,
    ),
    (
        796,
        "ModifySubscriptionResponse",
        "ModifySubscription",
        MsgKind::Response,
    ),
    (
        799,
        "SetPublishingModeRequest",
        "SetPublishingMode",
        MsgKind::Request,
    ),
    (
        802,
        "SetPublishingModeResponse",
        "SetPublishingMode",
        MsgKind::Response,
    ),
    (826, "PublishRequest", "Publish", MsgKind::Request),
    (829, "PublishResponse", "Publish", MsgKind::Response),
    (832, "RepublishRequest", "Republish", MsgKind::Request),
    (835, "RepublishResponse", "Republish", MsgKind::Response),
    (
        841,
        "TransferSubscriptionsRequest",
        "TransferSubscriptions",
        MsgKind::Request,
    ),
    (
        844,
        "TransferSubscriptionsResponse",
        "TransferSubscriptions",
        MsgKind::Response,
    ),
    (
        847,
        "DeleteSubscriptionsRequest",
        "DeleteSubscriptions",
        MsgKind::Request,
    ),
    (
        850,
        "DeleteSubscriptionsResponse",
        "DeleteSubscriptions",
        MsgKind::Response,
    ),
    (
        12208,
        "FindServersOnNetworkRequest",
        "FindServersOnNetwork",
        MsgKind::Request,
    ),
    (
        12209,
        "FindServersOnNetworkResponse",
        "FindServersOnNetwork",
        MsgKind::Response,
    ),
    (
        12211,
        "RegisterServer2Request",
        "RegisterServer2",
        MsgKind::Request,
    ),
    (
        12212,
        "RegisterServer2Response",
        "RegisterServer2",
        MsgKind::Response,
    ),
];

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn table_matches_specification_csv() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/opcua/NodeIds.csv");
        let csv = std::fs::read_to_string(&path).expect("NodeIds.csv");
        let rows: Vec<(String, u32)> = csv
            .lines()
            .filter_map(|l| {
                let mut f = l.split(',');
                Some((f.next()?.to_string(), f.next()?.trim().parse().ok()?))
            })
            .collect();
        // Every embedded pair is in the CSV under its encoding name.
        for &(id, type_name, service, kind) in ENCODINGS {
            let sym = format!("{type_name}_Encoding_DefaultBinary");
            assert!(rows.contains(&(sym.clone(), id)), "{sym} = {id}");
            assert!(type_name.starts_with(service));
            match kind {
                MsgKind::Request | MsgKind::Structure => assert!(type_name.ends_with("Request")),
                MsgKind::Response => assert!(type_name.ends_with("Response")),
                MsgKind::Fault => assert_eq!(type_name, "ServiceFault"),
            }
        }
        // Every request/response encoding of the CSV is in the table.
        let mut n = 0;
        for (sym, id) in &rows {
            if sym.ends_with("Request_Encoding_DefaultBinary")
                || sym.ends_with("Response_Encoding_DefaultBinary")
            {
                let e = lookup(*id).unwrap_or_else(|| panic!("{sym} missing"));
                assert_eq!(format!("{}_Encoding_DefaultBinary", e.type_name), *sym);
                n += 1;
            }
        }
        assert_eq!(n + 1, ENCODINGS.len());
        assert!(ENCODINGS.windows(2).all(|w| w[0].0 < w[1].0));
        // The identity token encodings used by ActivateSession.
        for (name, id) in [
            ("AnonymousIdentityToken", identity::ANONYMOUS),
            ("UserNameIdentityToken", identity::USER_NAME),
            ("X509IdentityToken", identity::X509),
            ("IssuedIdentityToken", identity::ISSUED),
            ("DataChangeNotification", DATA_CHANGE_NOTIFICATION),
            ("ServiceFault", 397),
        ] {
            assert!(
                rows.contains(&(format!("{name}_Encoding_DefaultBinary"), id)),
                "{name}"
            );
        }
    }

    fn string(v: &mut Vec<u8>, s: &[u8]) {
        v.extend((s.len() as i32).to_le_bytes());
        v.extend(s);
    }

    /// A GetEndpoints response body with `n` endpoints, each with its own URL and policy.
    fn many_endpoints(n: usize) -> Vec<u8> {
        let mut v = (n as i32).to_le_bytes().to_vec();
        for i in 0..n {
            string(&mut v, format!("opc.tcp://h{i}:4840").as_bytes()); // endpoint URL
            string(&mut v, format!("urn:server{i}").as_bytes()); // application URI
            v.extend([0xff; 4]); // product URI null
            v.push(0); // application name empty
            v.extend([0; 4]); // application type Server
            v.extend([0xff; 12]); // gateway, discovery profile, discovery URLs: null
            v.extend([0xff; 4]); // server certificate null
            v.extend(1u32.to_le_bytes()); // security mode None
            string(&mut v, format!("x#P{i}").as_bytes()); // security policy URI
            v.extend(1i32.to_le_bytes()); // one user token policy
            v.extend([0xff; 4]); // policy id null
            v.extend(0u32.to_le_bytes()); // Anonymous
            v.extend([0xff; 12]); // issued token type, issuer URL, policy URI: null
            v.extend([0xff; 4]); // transport profile null
            v.push(0); // security level
        }
        v
    }

    /// A DataChangeNotification body from a seed: items whose DataValues are of every kind
    /// (fixed scalars of each type with any fields, strings, arrays, nulls, no value).
    fn notification_body(seed: u64, items: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut v = (items as i32).to_le_bytes().to_vec();
        for _ in 0..items {
            v.extend(((next() % 7) as u32).to_le_bytes()); // client handle
            let mask = (next() % 64) as u8 | if next() % 5 == 0 { 0 } else { 1 };
            v.push(mask);
            let kind = next() % 10;
            if mask & 1 != 0 {
                match kind {
                    0 => {
                        v.push(12); // String
                        v.extend(3i32.to_le_bytes());
                        v.extend(b"abc");
                    }
                    1 => {
                        v.push(6 | 0x80); // Int32 array
                        v.extend(2i32.to_le_bytes());
                        v.extend([1, 0, 0, 0, 2, 0, 0, 0]);
                    }
                    2 => v.push(0), // null variant
                    _ => {
                        let t = 1 + (next() % 11) as u8;
                        v.push(t);
                        v.extend((0..fixed_size(t)).map(|_| next() as u8));
                    }
                }
            }
            for (bit, len) in [(0x02, 4), (0x04, 8), (0x10, 2), (0x08, 8), (0x20, 2)] {
                if mask & bit != 0 {
                    v.extend((0..len).map(|_| next() as u8));
                }
            }
        }
        v.extend((-1i32).to_le_bytes()); // diagnostic infos: null
        v
    }

    /// The size of a fixed-size scalar (as the types module has it).
    fn fixed_size(t: u8) -> usize {
        match t {
            1..=3 => 1,
            4 | 5 => 2,
            6 | 7 | 10 => 4,
            _ => 8,
        }
    }

    /// The one-step read of the common monitored item gives what the item-by-item read
    /// gives: accesses, values, names, dropped counts, errors and the reader's position, on
    /// bodies with every kind of DataValue, cut anywhere, under small depth, value and access
    /// caps.
    /// A PublishResponse body (after the header) with these notification ExtensionObjects.
    fn publish_body(seed: u64, exts: &[Vec<u8>]) -> Vec<u8> {
        let mut v = (seed as u32).to_le_bytes().to_vec(); // subscription id
                                                          // Available sequence numbers: 1, null, empty, 3, a negative length.
        let available = [1i32, -1, 0, 3, -2][(seed / 5 % 5) as usize];
        v.extend(available.to_le_bytes());
        for k in 0..available.max(0) {
            v.extend((7 + k as u32).to_le_bytes());
        }
        v.push(0); // more notifications
        v.extend(((seed >> 3) as u32).to_le_bytes()); // notification sequence
        v.extend([0x11; 8]); // publish time
        v.extend((exts.len() as i32).to_le_bytes());
        for e in exts {
            v.extend(e);
        }
        // Results: BadTimeout, null, empty; diagnostic infos: null, empty, a negative length.
        match seed / 25 % 3 {
            0 => {
                v.extend(1i32.to_le_bytes());
                v.extend(0x800a_0000u32.to_le_bytes());
            }
            1 => v.extend((-1i32).to_le_bytes()),
            _ => v.extend(0i32.to_le_bytes()),
        }
        let diagnostics = [-1i32, 0, -2][(seed / 75 % 3) as usize];
        v.extend(diagnostics.to_le_bytes());
        v
    }

    /// The default decode limits with `f` applied.
    fn limits_with(
        f: impl FnOnce(&mut crate::proto::opcua::limits::DecodeLimits),
    ) -> crate::proto::opcua::limits::DecodeLimits {
        let mut l = crate::proto::opcua::limits::DecodeLimits::default();
        f(&mut l);
        l
    }

    #[test]
    fn publish_fast_path_matches_general_read() {
        let limits = [
            limits_with(|_| ()),
            limits_with(|l| l.max_depth = 0),
            limits_with(|l| l.max_depth = 1),
            limits_with(|l| l.max_bytestring_len = 40),
            limits_with(|l| l.max_accesses_kept = 3),
            limits_with(|l| l.max_array_len = 2),
        ];
        // ExtensionObjects around a notification body: the usual shape, then others.
        let ext = |head: &[u8], len: Option<i32>, body: &[u8]| {
            let mut v = head.to_vec();
            if let Some(n) = len {
                v.extend(n.to_le_bytes());
            }
            v.extend(body);
            v
        };
        let mut kept = 0;
        for seed in 0..240u64 {
            let body = notification_body(seed, (seed % 8) as usize);
            let n = body.len() as i32;
            let shapes = [
                ext(&[0x01, 0x00, 0x2b, 0x03, 0x01], Some(n), &body),
                ext(&[0x01, 0x00, 0x2b, 0x03, 0x01], Some(-1), &[]),
                ext(&[0x01, 0x00, 0x2b, 0x03, 0x01], Some(-2), &[]),
                ext(&[0x01, 0x00, 0x2b, 0x03, 0x01], Some(n + 3), &body),
                ext(&[0x01, 0x00, 0x2c, 0x03, 0x01], Some(n), &body),
                ext(&[0x01, 0x01, 0x2b, 0x03, 0x01], Some(n), &body),
                ext(&[0x02, 0x00, 0x2b, 0x03, 0x00, 0x00, 0x01], Some(n), &body),
                ext(&[0x01, 0x00, 0x2b, 0x03, 0x00], None, &[]),
                ext(&[0x01, 0x00, 0x2b, 0x03, 0x02], Some(n), &body),
                ext(&[0x01, 0x00, 0x2b, 0x03, 0x07], Some(n), &body),
            ];
            let k = seed as usize % shapes.len();
            let lists = [
                vec![shapes[0].clone()],
                vec![shapes[0].clone(), shapes[0].clone()],
                vec![shapes[k].clone()],
                vec![shapes[0].clone(), shapes[k].clone(), shapes[0].clone()],
            ];
            for exts in &lists {
                let msg = publish_body(seed, exts);
                let cuts = [
                    msg.len(),
                    msg.len() - 1,
                    msg.len() - 4,
                    msg.len() - 9,
                    msg.len() / 2,
                    30,
                    17,
                    12,
                    8,
                    3,
                ];
                for cut in cuts {
                    let bytes = &msg[..cut.min(msg.len())];
                    for (li, lim) in limits.iter().enumerate() {
                        let run = |fast: bool| {
                            let mut r = Reader::new(bytes, lim);
                            let mut d = Decoded::default();
                            let mut names = HandleNames::default();
                            let cap = lim.max_accesses_kept;
                            let res = publish_response(&mut r, &mut d, cap, &mut names, fast);
                            (res, d, r.rest().len())
                        };
                        let want = run(false);
                        let got = run(true);
                        assert_eq!(got, want, "seed {seed} cut {cut} limits {li} {exts:?}");
                        kept += got.1.accesses.len();
                    }
                }
            }
        }
        assert!(kept > 1000, "{kept}");
    }

    #[test]
    fn data_change_fast_path_matches_item_by_item_read() {
        let limits = [
            limits_with(|_| ()),
            limits_with(|l| l.max_depth = 1),
            limits_with(|l| l.max_depth = 2),
            limits_with(|l| l.max_values_kept = 0),
            limits_with(|l| l.max_accesses_kept = 3),
        ];
        let mut fast_items = 0;
        for seed in 0..200u64 {
            let body = notification_body(seed, (seed % 9) as usize);
            for cut in [body.len(), body.len() - 1, body.len() / 2, 7, 4] {
                let bytes = &body[..cut.min(body.len())];
                for (li, lim) in limits.iter().enumerate() {
                    for depth in 0..2 {
                        let run = |fast: bool| {
                            let mut r = Reader::new(bytes, lim);
                            let mut d = Decoded::default();
                            let mut names = HandleNames::default();
                            let res = if depth == 0 {
                                data_change_notifications_with(
                                    &mut r,
                                    &mut d,
                                    lim.max_accesses_kept,
                                    &mut names,
                                    fast,
                                )
                            } else {
                                r.nested(|r| {
                                    data_change_notifications_with(
                                        r,
                                        &mut d,
                                        lim.max_accesses_kept,
                                        &mut names,
                                        fast,
                                    )
                                })
                            };
                            (res, d, r.rest().len())
                        };
                        let want = run(false);
                        let got = run(true);
                        assert_eq!(got, want, "seed {seed} cut {cut} limits {li} depth {depth}");
                        fast_items += got.1.accesses.len();
                    }
                }
            }
        }
        assert!(fast_items > 1000, "{fast_items}");
    }

    #[test]
    fn per_item_facts_and_details_are_capped() {
        let limits = crate::proto::opcua::limits::DecodeLimits::default();
        let body = many_endpoints(200);
        let mut d = Decoded::default();
        decode_response("GetEndpoints", &mut Reader::new(&body, &limits), &mut d).unwrap();
        assert_eq!(d.facts.len(), MAX_FACTS);
        assert!(d.details.len() <= MAX_DETAILS);
        assert!(d
            .details
            .contains(&("offered_security", Value::Str("P0/None".into()))));
        assert!(d
            .details
            .contains(&("offered_identity", Value::Str("Anonymous".into()))));
        // Call with more methods than kept: details and accesses stop at their caps.
        let small = crate::proto::opcua::limits::DecodeLimits {
            max_accesses_kept: 3,
            ..limits
        };
        let mut call = 100i32.to_le_bytes().to_vec();
        for i in 0..100u8 {
            call.extend([0x00, i]); // object i=<i>
            call.extend([0x00, 0x2a]); // method i=42
            call.extend([0xff; 4]); // input arguments null
        }
        let mut d = Decoded::default();
        decode_request("Call", &mut Reader::new(&call, &small), &mut d).unwrap();
        assert_eq!(d.accesses.len(), 3);
        assert_eq!(d.items_dropped, 97);
        assert_eq!(d.details.len(), MAX_DETAILS);
        assert_eq!(d.details[1], ("call_object", Value::Str("i=1".into())));
    }

    /// Arrays of the smallest valid elements are not mistaken for truncated ones.
    #[test]
    fn smallest_array_elements_are_accepted() {
        let limits = crate::proto::opcua::limits::DecodeLimits::default();
        let write = [
            2, 0, 0, 0, // 2 WriteValues
            0x00, 0x01, 13, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
            0x00, // i=1, Value, no range, empty DataValue
            0x00, 0x02, 13, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, // i=2, same
        ];
        let mut d = Decoded::default();
        decode_request("Write", &mut Reader::new(&write, &limits), &mut d).unwrap();
        assert_eq!(d.accesses.len(), 2);
        let call = [
            1, 0, 0, 0, // 1 CallMethodRequest
            0x00, 0x55, 0x00, 0x2a, 0xff, 0xff, 0xff,
            0xff, // object i=85, method i=42, no arguments
        ];
        let mut d = Decoded::default();
        decode_request("Call", &mut Reader::new(&call, &limits), &mut d).unwrap();
        assert_eq!(d.accesses.len(), 1);
    }

    #[test]
    fn direct_positions_are_the_searched_ones() {
        let searched = |id: u32| ENCODINGS.binary_search_by_key(&id, |e| e.0).ok();
        for id in (0..13_000).chain([u32::MAX, u32::MAX - 1, 1 << 31]) {
            assert_eq!(position(id), searched(id), "{id}");
        }
        for &(id, ..) in ENCODINGS {
            assert!(position(id).is_some());
        }
    }

    proptest::proptest! {
        /// Request headers with plain tails (and near misses), cut anywhere, at every depth
        /// cap: the lean reader reads what the full one reads.
        #[test]
        fn plain_request_tails_match_full_header(
            token in proptest::sample::select(vec![
                vec![0x00, 0x00],
                vec![0x01, 0x00, 0x05, 0x00],
                vec![0x05],
                vec![0x02, 0x01, 0x00, 0x07, 0x00, 0x00, 0x00],
                [vec![0x04, 0x01, 0x00], vec![0xab; 16]].concat(),
                vec![0x14, 0x00],
                vec![0x03, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x41],
            ]),
            fixed in proptest::collection::vec(proptest::prelude::any::<u8>(), 16..=16),
            audit in proptest::sample::select(vec![[0xffu8; 4], [0; 4], [1, 0, 0, 0], [0xfe, 0xff, 0xff, 0xff]]),
            timeout in proptest::prelude::any::<[u8; 4]>(),
            ext in proptest::sample::select(vec![[0u8; 3], [0, 0, 1], [1, 0, 0], [0, 1, 0]]),
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
            cut in 0usize..48,
            depth in 0usize..3,
        ) {
            let limits = crate::proto::opcua::limits::DecodeLimits {
                max_depth: depth,
                ..Default::default()
            };
            let mut all = token;
            all.extend(fixed); // timestamp, request handle, return diagnostics
            all.extend(audit);
            all.extend(timeout);
            all.extend(ext);
            all.extend(bytes);
            all.truncate(cut);
            let (mut a, mut b) = (Reader::new(&all, &limits), Reader::new(&all, &limits));
            proptest::prop_assert_eq!(request_handle(&mut a), request_header(&mut b).map(|h| h.request_handle));
            proptest::prop_assert_eq!(a.pos(), b.pos());
        }
    }

    #[test]
    fn handle_names_are_the_written_names() {
        let mut names = HandleNames::default();
        // Handle 0 in a fresh (empty) slot, colliding handles, the extremes, repeats.
        let n = HANDLE_NAME_SLOTS as u32;
        for h in [
            0,
            0,
            n,
            0,
            1,
            n + 1,
            1,
            9,
            10,
            99,
            u32::MAX,
            u32::MAX,
            u32::MAX - n,
            7,
        ] {
            assert_eq!(names.name(h), client_handle(h));
            assert_eq!(names.name(h), format!("client_handle={h}"));
        }
        assert!(names.slots.len() <= HANDLE_NAME_SLOTS);
    }

    /// Names (and node ids) written into the recycled strings of finished events are the
    /// names written into new ones: decoding the same notifications again, after their
    /// events (and events naming longer and shorter objects) were recycled, gives the same
    /// accesses.
    #[test]
    fn recycled_names_give_the_same_accesses() {
        let lim = crate::proto::opcua::limits::DecodeLimits::default();
        let decode = |body: &[u8], names: &mut HandleNames| {
            let mut r = Reader::new(body, &lim);
            let mut d = Decoded::default();
            let res = data_change_notifications(&mut r, &mut d, lim.max_accesses_kept, names);
            (res, d)
        };
        let mut names = HandleNames::default();
        for seed in 0..100u64 {
            let body = notification_body(seed, (seed % 9) as usize);
            let want = decode(&body, &mut HandleNames::default());
            let first = decode(&body, &mut names);
            assert_eq!(first, want, "seed {seed}");
            let mut evs = vec![
                crate::event::IcsEvent {
                    accesses: first.1.accesses,
                    session: Some(format!("{seed}")),
                    ..crate::detect::testkit::read_hr(0, "10.0.0.1", "10.0.0.2", 1, 0, &[])
                },
                crate::event::IcsEvent {
                    accesses: (0..3)
                        .map(|k| Access {
                            dir: AccessDir::Write,
                            object: ObjectRef::Other {
                                name: "y".repeat(k * 20 + 1),
                            },
                            values: Values::new(),
                        })
                        .collect(),
                    ..crate::detect::testkit::read_hr(0, "10.0.0.1", "10.0.0.2", 1, 0, &[])
                },
            ];
            recycle::recycle_all(&mut evs);
            assert_eq!(decode(&body, &mut names), want, "seed {seed}");
            assert!(names.spare.len() <= NAME_BATCH);
            assert!(names.spare_values.len() <= NAME_BATCH);
            assert!(names.spare_values.iter().all(|v| v.is_empty()));
            let id = crate::proto::opcua::types::NodeId {
                ns: (seed % 3) as u16,
                id: crate::proto::opcua::types::Identifier::Numeric(seed as u32 * 7919),
            };
            assert_eq!(id.to_text(), id.to_string());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// A kept name is the name written anew, whatever handles came before.
        #[test]
        fn handle_names_match_client_handle(
            handles in proptest::collection::vec(proptest::prop_oneof![0u32..80, proptest::prelude::any::<u32>()], 0..200),
        ) {
            let mut names = HandleNames::default();
            for h in handles {
                proptest::prop_assert_eq!(names.name(h), client_handle(h));
            }
            proptest::prop_assert!(names.slots.len() <= HANDLE_NAME_SLOTS);
            proptest::prop_assert!(names.spare.len() <= NAME_BATCH);
            proptest::prop_assert!(names.spare_values.len() <= NAME_BATCH);
        }
    }

    proptest::proptest! {
        /// The lean header readers read what the full ones read, plain rests included, at
        /// every depth cap.
        #[test]
        fn lean_headers_match_full_ones(
            prefix in proptest::sample::select(vec![
                PLAIN_HEADER_REST[0].to_vec(),
                PLAIN_HEADER_REST[1].to_vec(),
                vec![],
                vec![0x00],
            ]),
            bytes in proptest::collection::vec(proptest::prop_oneof![0u8..2, 0xffu8..=0xff, proptest::prelude::any::<u8>()], 0..40),
            cut in 0usize..48,
            depth in 0usize..3,
        ) {
            let limits = crate::proto::opcua::limits::DecodeLimits {
                max_depth: depth,
                ..Default::default()
            };
            let mut all = prefix;
            all.extend(bytes);
            all.truncate(cut);
            let (mut a, mut b) = (Reader::new(&all, &limits), Reader::new(&all, &limits));
            proptest::prop_assert_eq!(skip_response_header_rest(&mut a), response_header_rest(&mut b).map(|_| ()));
            proptest::prop_assert_eq!(a.pos(), b.pos());
            let (mut a, mut b) = (Reader::new(&all, &limits), Reader::new(&all, &limits));
            proptest::prop_assert_eq!(request_handle(&mut a), request_header(&mut b).map(|h| h.request_handle));
            proptest::prop_assert_eq!(a.pos(), b.pos());
        }
    }

    #[test]
    fn lookups() {
        let publish = |id| lookup(id).map(|e| (e.service, e.kind));
        assert_eq!(
            publish(PUBLISH_REQUEST),
            Some(("Publish", MsgKind::Request))
        );
        assert_eq!(
            publish(PUBLISH_RESPONSE),
            Some(("Publish", MsgKind::Response))
        );
        assert_eq!(lookup(631).unwrap().service, "Read");
        assert_eq!(lookup(634).unwrap().kind, MsgKind::Response);
        assert_eq!(lookup(397).unwrap().kind, MsgKind::Fault);
        assert_eq!(lookup(706).unwrap().kind, MsgKind::Structure);
        assert!(lookup(1).is_none());
        assert_eq!(request_id_of("Read"), Some(631));
        assert_eq!(op_kind("Write"), OpKind::Write);
        assert_eq!(op_kind("Publish"), OpKind::Subscribe);
        assert_eq!(op_kind("Nope"), OpKind::Other);
    }
}
