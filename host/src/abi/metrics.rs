//! The metric calls: ids are per VM, each naming a metric of the host's shared stats store.

use wasmtime::Linker;

use super::C;
use super::memory::{read_str, return_u32, return_u64};
use crate::vm::{VmState, status};

/// Adds `proxy_define_metric`, `proxy_{increment,record,get}_metric`.
pub(crate) fn add(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: C<'_>, ty: i32, np: i32, nl: i32, ret: i32| {
            let Some(name) = read_str(&mut c, np, nl) else {
                return status::BAD_ARGUMENT;
            };
            let Some(global) = c.data().metrics.define(ty, &name) else {
                return status::BAD_ARGUMENT;
            };
            let s = c.data_mut();
            s.metric_ids.push(global);
            let id = s.metric_ids.len() as u32 - 1;
            return_u32(&mut c, ret, id)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_increment_metric",
        |c: C<'_>, id: i32, offset: i64| {
            let s = c.data();
            match s.metric_ids.get(id as u32 as usize) {
                Some(g) => s.metrics.increment(*g, offset),
                None => status::NOT_FOUND,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_record_metric",
        |c: C<'_>, id: i32, value: i64| {
            let s = c.data();
            match s.metric_ids.get(id as u32 as usize) {
                Some(g) => s.metrics.record(*g, value as u64),
                None => status::NOT_FOUND,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, ret: i32| {
            let v = {
                let s = c.data();
                s.metric_ids
                    .get(id as u32 as usize)
                    .map(|g| s.metrics.value(*g))
            };
            match v {
                Some(v) => return_u64(&mut c, ret, v),
                None => status::NOT_FOUND,
            }
        },
    )?;
    Ok(())
}
