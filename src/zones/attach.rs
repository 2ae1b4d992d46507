//! Putting geo service names into the zones that contain them, per snapshot: each
//! service name becomes a node (with empty non-terminals above it if needed) marked with
//! its service's index, which `answer` follows to `services`. Zones without services are
//! shared, not copied.
//!
//! A service name is rejected where it could never be answered as configured: outside
//! every zone, in a signed zone, at or below a delegation or a DNAME, or beside A/AAAA/
//! CNAME data of its own in the zone file.

use std::path::Path;

use super::catalog::Catalog;
use super::load::type_name;
use super::zone::{insert_empty_non_terminals, Node};
use crate::config::error::{line_of, Key};
use crate::config::geo::ServiceConfig;
use crate::config::Problem;
use crate::wire::query::rtype;
use crate::wire::Name;

/// `catalog` with `services` attached (service `i` is `services[i]`), or every problem.
/// `config_file` is where the services are configured, for the problems' lines.
/// `signed_here` tells the zones Waypost signs itself: services in them are signed with
/// the zone (any other signed zone's keys are not Waypost's). `transfers`: some secondary
/// may transfer the zones (`[transfer] allow`).
pub fn attach(catalog: &Catalog, services: &[ServiceConfig], config_file: &Path, signed_here: &dyn Fn(&Name) -> bool, transfers: bool) -> Result<Catalog, Vec<Problem>> {
    let mut out = catalog.clone();
    let mut problems = Vec::new();
    // For the line of a service's key in the config file (read only when needed).
    let config_text = std::cell::OnceCell::new();
    let service_line = |name: &Name, field: Option<&str>| {
        let text = config_text.get_or_init(|| std::fs::read_to_string(config_file).unwrap_or_default());
        let key = Key::new("services").at(&name.to_string());
        line_of(text, &field.map_or_else(|| key.clone(), |f| key.at(f)))
    };
    for (index, svc) in services.iter().enumerate() {
        let name = &svc.name;
        let Some(zone) = catalog.find(name.as_wire()) else {
            problems.push(Problem { file: config_file.to_path_buf(), line: service_line(name, None), msg: format!("service {name} is not inside any served zone") });
            continue;
        };
        // A pre-signed zone's keys are not Waypost's: a service answer in it could not be
        // signed, and an unsigned answer inside a signed zone is bogus to every validator.
        if zone.dnssec.is_some() && !signed_here(&zone.apex) {
            problems.push(Problem {
                file: config_file.to_path_buf(),
                line: service_line(name, None),
                msg: format!("service {name} is inside the signed zone {}: Waypost cannot sign its answers without that zone's keys, and unsigned answers in a signed zone fail validation (let Waypost sign the zone: put its keys in [dnssec] key-dir; or serve the service from an unsigned zone)", zone.apex),
            });
            continue;
        }
        // The name is in the signed chain (NSEC/NSEC3), so a copy without it is broken: an
        // NSEC3 whose name is not in the copy fails dnssec-verify and ldns-verify-zone, and
        // an NSEC one makes the secondaries answer NODATA for the service.
        if transfers && svc.transfer.is_none() && signed_here(&zone.apex) {
            problems.push(Problem {
                file: config_file.to_path_buf(),
                line: service_line(name, Some("transfer")),
                msg: format!("service {name}: transfer = \"omit\" in {}, a zone Waypost signs and transfers: its name is in the signed NSEC/NSEC3 chain, so the secondaries' copy would not verify; name the data centre whose answer they should serve", zone.apex),
            });
        }
        // A service at or below a zone cut would never be answered: the referral wins.
        let mut up = Some(name.clone());
        while let Some(n) = up.filter(|n| n != &zone.apex && n.is_subdomain_of(&zone.apex)) {
            if let Some(ns) = zone.node(n.as_wire()).filter(|node| node.is_cut).and_then(|node| node.rrset(rtype::NS)) {
                problems.push(Problem { file: zone.source.clone(), line: ns.line as usize, msg: format!("service {name} is at or below the delegation {n}") });
            }
            up = n.parent();
        }
        if let Some(node) = zone.node(name.as_wire()) {
            for t in [rtype::A, rtype::AAAA, rtype::CNAME] {
                if let Some(set) = node.rrset(t) {
                    problems.push(Problem {
                        file: zone.source.clone(),
                        line: set.line as usize,
                        msg: format!("{name} is a service in {}; its {} records here would never be served", config_file.display(), type_name(t)),
                    });
                }
            }
        }
        // RFC 6672: a name below a DNAME is always substituted, so the service would never answer.
        let mut up = name.parent();
        while let Some(n) = up.filter(|n| n.is_subdomain_of(&zone.apex)) {
            if let Some(d) = zone.node(n.as_wire()).and_then(|node| node.rrset(rtype::DNAME)) {
                problems.push(Problem { file: zone.source.clone(), line: d.line as usize, msg: format!("service {name} is below the DNAME at {n}") });
            }
            up = n.parent();
        }
        let apex = zone.apex.clone();
        // never panics: the zone was found in this catalog.
        let served = out.get_mut(apex.as_wire()).expect("zone present");
        let z = std::sync::Arc::make_mut(&mut served.zone);
        // Cuts are those of the zone as loaded (service names add none).
        let below_cut = |n: &Name| super::zone::is_below(n.as_wire(), apex.as_wire().len(), |a| zone.node(a).is_some_and(|x| x.is_cut));
        let node = z.nodes.get_or_insert_with(name, || Node::empty(name.clone(), below_cut(name)));
        node.service = Some(index as u32);
        insert_empty_non_terminals(&mut z.nodes, &apex, name, below_cut);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
