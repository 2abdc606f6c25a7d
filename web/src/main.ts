/**
 * The browser client's entry: `/` is the home page, `/join/{id}` the room.
 */
import './style.css'
import { renderHome } from './ui/home.js'
import { renderRoom } from './ui/room.js'
import { h, fill } from './ui/dom.js'

const root = document.getElementById('app')!
const join = /^\/join\/([^/]+)\/?$/.exec(location.pathname)
if (location.pathname === '/') renderHome(root)
else if (join) renderRoom(root, join[1])
else fill(root, h('main', { class: 'home' }, h('h1', {}, 'mesh'), h('p', {}, 'There is no page here. '), h('a', { href: '/' }, 'Go to the start page')))
