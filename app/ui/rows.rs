//! A list model for long lists that grow at both ends (the timeline): prepending a page is
//! O(page), not O(list), and the ListView keeps its scroll position because it is told
//! exactly which rows were inserted.

use std::cell::RefCell;
use std::collections::VecDeque;

use slint::{Model, ModelNotify, ModelTracker};

pub struct Rows<T> {
    rows: RefCell<VecDeque<T>>,
    notify: ModelNotify,
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows {
            rows: RefCell::new(VecDeque::new()),
            notify: ModelNotify::default(),
        }
    }
}

impl<T: Clone + 'static> Rows<T> {
    pub fn reset(&self, rows: Vec<T>) {
        *self.rows.borrow_mut() = rows.into();
        self.notify.reset();
    }

    pub fn prepend(&self, rows: Vec<T>) {
        let n = rows.len();
        {
            let mut r = self.rows.borrow_mut();
            for row in rows.into_iter().rev() {
                r.push_front(row);
            }
        }
        if n > 0 {
            self.notify.row_added(0, n);
        }
    }

    pub fn append(&self, rows: Vec<T>) {
        let n = rows.len();
        let at = {
            let mut r = self.rows.borrow_mut();
            let at = r.len();
            r.extend(rows);
            at
        };
        if n > 0 {
            self.notify.row_added(at, n);
        }
    }

    pub fn set(&self, i: usize, row: T) {
        let changed = match self.rows.borrow_mut().get_mut(i) {
            Some(slot) => {
                *slot = row;
                true
            }
            None => false,
        };
        if changed {
            self.notify.row_changed(i);
        }
    }
}

impl<T: Clone + 'static> Model for Rows<T> {
    type Data = T;

    fn row_count(&self) -> usize {
        self.rows.borrow().len()
    }

    fn row_data(&self, row: usize) -> Option<T> {
        self.rows.borrow().get(row).cloned()
    }

    fn model_tracker(&self) -> &dyn ModelTracker {
        &self.notify
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
