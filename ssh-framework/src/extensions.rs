//! A type map: values keyed by their type, as `http::Extensions` holds them.
//!
//! Requests carry one (a layer inserts, a handler extracts with
//! [`Extension<T>`](crate::extract::Extension)), and so does each connection
//! (what an authentication handler attaches is there for every later handler
//! of that connection). Values are `Clone` so that the framework can roll back
//! what a failed authentication attempt attached.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;

/// A value in the map: cloneable behind a trait object.
trait AnyClone: Any + Send + Sync {
    fn clone_box(&self) -> Box<dyn AnyClone>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Clone + Send + Sync + 'static> AnyClone for T {
    fn clone_box(&self) -> Box<dyn AnyClone> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl Clone for Box<dyn AnyClone> {
    fn clone(&self) -> Self {
        (**self).clone_box()
    }
}

/// Values keyed by type; at most one value of each type.
#[derive(Clone, Default)]
pub struct Extensions {
    // Most requests carry none: no allocation until the first insert, and one
    // pointer (not a 48-byte map) in every `Request` moved through the stack.
    #[allow(clippy::box_collection)]
    map: Option<Box<HashMap<TypeId, Box<dyn AnyClone>>>>,
}

impl Extensions {
    /// An empty map.
    pub fn new() -> Self {
        Extensions::default()
    }

    /// Inserts `value`, returning the value of the same type it replaces.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        let old = self.map.get_or_insert_with(Box::default).insert(TypeId::of::<T>(), Box::new(value))?;
        unbox(old)
    }

    /// The value of type `T`, if there is one.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        // `&**`: the value inside the box, not the box (which is `AnyClone` too).
        (**self.map.as_ref()?.get(&TypeId::of::<T>())?).as_any().downcast_ref()
    }

    /// The value of type `T`, mutably.
    pub fn get_mut<T: Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        (**self.map.as_mut()?.get_mut(&TypeId::of::<T>())?).as_any_mut().downcast_mut()
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> Option<T> {
        unbox(self.map.as_mut()?.remove(&TypeId::of::<T>())?)
    }

    /// Whether there is a value of type `T`.
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.map.as_ref().is_some_and(|m| m.contains_key(&TypeId::of::<T>()))
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.map = None;
    }
}

/// The value of type `T` in a box taken out of the map.
fn unbox<T: 'static>(boxed: Box<dyn AnyClone>) -> Option<T> {
    // `AnyClone::into_any` on the trait object, not on the box.
    let any: Box<dyn Any> = <dyn AnyClone>::into_any(boxed);
    any.downcast().ok().map(|b: Box<T>| *b)
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions").field("len", &self.len()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_value_per_type_and_clones() {
        let mut ext = Extensions::new();
        assert!(ext.is_empty());
        assert_eq!(ext.insert(5u32), None);
        assert_eq!(ext.insert(7u32), Some(5));
        ext.insert(String::from("role"));
        let copy = ext.clone();
        *ext.get_mut::<u32>().unwrap() += 1;
        assert_eq!(ext.get::<u32>(), Some(&8));
        assert_eq!(copy.get::<u32>(), Some(&7));
        assert_eq!(ext.remove::<String>().as_deref(), Some("role"));
        assert!(!ext.contains::<String>());
        assert_eq!(ext.len(), 1);
    }
}
