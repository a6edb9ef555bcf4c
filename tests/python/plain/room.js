// A room every connection of a shared instance joins: `join(callback)`
// keeps the callback, `post(text)` sends the text to every member without
// waiting for any.

const members = [];

export class RoomService {
  exposed_join(callback) {
    members.push(callback.keep());
    return members.length;
  }

  exposed_post(text) {
    for (const member of members) member.async(text);
    return members.length;
  }
}
