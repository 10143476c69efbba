#include "session/session_list.h"

#include "session/session.h"

namespace sb::session {

void SessionList::push(Session* s) {
    s->link.prev = nullptr;
    s->link.next = head_;
    if (head_ != nullptr) head_->link.prev = s;
    head_ = s;
    ++size_;
}

void SessionList::remove(Session* s) {
    if (s->link.prev != nullptr) {
        s->link.prev->link.next = s->link.next;
    } else {
        head_ = s->link.next;
    }
    if (s->link.next != nullptr) s->link.next->link.prev = s->link.prev;
    s->link.prev = s->link.next = nullptr;
    --size_;
}

Session* SessionList::next(const Session* s) {
    return s->link.next;
}

}  // namespace sb::session
